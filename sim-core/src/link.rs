//! Links and other FIFO resources: a message (a train of packets) waits for the
//! resource, is serialised at its rate and arrives after the propagation latency.
//!
//! A FIFO server's departure times are fixed when a message is admitted, so a link needs
//! no event of its own: `send` answers when the message arrives at the far end, or that
//! it was dropped because the buffer was full. The same type models a director's
//! per-packet CPU cost (a rate in packets instead of bits).
//!
//! # Service, delivery and buffer
//! A message of `b` bytes in `p` packets needs `ceil(8·b·1e9 / bandwidth_bps) + p·per_packet`
//! [ns] of service. It starts at `max(now, busy_until)`, ends at `end` and is delivered at
//! `end + latency`.
//!
//! The buffer holds what has been admitted but not yet sent. The message being sent counts
//! pro rata: with a fraction `f` of its service time still to come it occupies
//! `ceil(f·b)` bytes and `ceil(f·p)` packets, as a drop-tail packet queue that frees each
//! packet once sent (a partly sent packet still counts). A message that does not fit is
//! dropped whole, so a message larger than the buffer never passes, even into an idle
//! channel. Latency adds no occupancy: propagation is not buffering.

use std::collections::VecDeque;

use lvs_sched::{Duration, Time};

/// A FIFO resource's parameters. `None` means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelConfig {
    /// One-way propagation latency.
    pub latency: Duration,
    /// Serialisation rate [bit/s].
    pub bandwidth_bps: Option<u64>,
    /// Processing time per packet (a director's CPU cost per forwarded packet).
    pub per_packet: Duration,
    /// Buffer for messages waiting or being sent [bytes].
    pub buffer_bytes: Option<u64>,
    /// Buffer for messages waiting or being sent [packets].
    pub buffer_packets: Option<u64>,
}

impl ChannelConfig {
    /// No latency, no rate limit, no cost, no buffer limit: delivery is instantaneous.
    pub const IDEAL: ChannelConfig = ChannelConfig {
        latency: Duration::ZERO,
        bandwidth_bps: None,
        per_packet: Duration::ZERO,
        buffer_bytes: None,
        buffer_packets: None,
    };
}

/// The fate of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transmit {
    /// It arrives at the far end at this time.
    Delivered(Time),
    /// The buffer could not hold it.
    Dropped,
}

/// Counters of a channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Messages admitted.
    pub messages: u64,
    /// Packets admitted.
    pub packets: u64,
    /// Bytes admitted.
    pub bytes: u64,
    /// Packets dropped.
    pub dropped_packets: u64,
    /// Bytes dropped.
    pub dropped_bytes: u64,
}

/// One direction of a link, or one FIFO processing resource.
#[derive(Clone, Debug)]
pub struct Channel {
    cfg: ChannelConfig,
    /// `cfg` is [`ChannelConfig::IDEAL`] (decided once: the configuration never changes).
    ideal: bool,
    /// `cfg` bounds the buffer.
    limited: bool,
    /// When the last admitted message finishes being sent.
    busy_until: Time,
    /// Service time admitted so far [ns].
    service_total_ns: u64,
    /// `now` of the last `send`, to check calls come in order.
    last_send: Time,
    /// Messages not yet fully sent, oldest first, popped lazily. Only kept when the buffer
    /// is limited: nothing else needs them.
    in_flight: VecDeque<InFlight>,
    /// Sum of `in_flight` [bytes].
    in_flight_bytes: u64,
    /// Sum of `in_flight` [packets].
    in_flight_packets: u64,
    stats: ChannelStats,
}

/// A message admitted and not yet fully sent.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    /// When its last bit is sent.
    end: Time,
    /// Its service time [ns] (> 0: messages with none never wait in the buffer).
    service_ns: u64,
    bytes: u64,
    packets: u64,
}

impl Channel {
    /// A channel, idle at time zero. Panics on a zero bandwidth (validation happens
    /// before).
    pub fn new(cfg: ChannelConfig) -> Self {
        assert!(cfg.bandwidth_bps != Some(0), "channel bandwidth must be positive");
        Channel {
            cfg,
            ideal: cfg == ChannelConfig::IDEAL,
            limited: cfg.buffer_bytes.is_some() || cfg.buffer_packets.is_some(),
            busy_until: Time::ZERO,
            service_total_ns: 0,
            last_send: Time::ZERO,
            in_flight: VecDeque::new(),
            in_flight_bytes: 0,
            in_flight_packets: 0,
            stats: ChannelStats::default(),
        }
    }

    /// Its parameters.
    pub fn config(&self) -> &ChannelConfig {
        &self.cfg
    }

    /// True when delivery is always instantaneous (the simulation may skip it).
    #[inline]
    pub fn is_ideal(&self) -> bool {
        self.ideal
    }

    /// When the last admitted message finishes being sent (it is not yet delivered:
    /// add the latency). At or before the last `send`'s `now` the channel is idle.
    pub fn busy_until(&self) -> Time {
        self.busy_until
    }

    /// Service time of a message [ns]: serialisation, rounded up to the next ns, plus
    /// the per-packet cost.
    pub fn service_time(&self, bytes: u64, packets: u64) -> Duration {
        let serialise_ns = match self.cfg.bandwidth_bps {
            None => 0,
            // u128: 8·bytes·1e9 overflows u64 from about 2.3 GB.
            // Saturating, as virtual time does (a size from a long tail).
            Some(bps) => u64::try_from((u128::from(bytes) * 8_000_000_000).div_ceil(u128::from(bps)))
                .unwrap_or(u64::MAX),
        };
        let per_packet_ns = packets.saturating_mul(self.cfg.per_packet.0);
        Duration(serialise_ns.saturating_add(per_packet_ns))
    }

    /// A message of `bytes` in `packets` packets is offered at `now` (calls come with
    /// non-decreasing `now`; panics otherwise).
    pub fn send(&mut self, now: Time, bytes: u64, packets: u64) -> Transmit {
        assert!(now >= self.last_send, "send at {now} before an earlier send at {}", self.last_send);
        self.last_send = now;
        if self.is_ideal() {
            self.admit_counters(bytes, packets);
            return Transmit::Delivered(now);
        }
        let service = self.service_time(bytes, packets);
        if self.buffer_limited() && !self.fits(now, bytes, packets) {
            self.stats.dropped_bytes += bytes;
            self.stats.dropped_packets += packets;
            return Transmit::Dropped;
        }
        self.admit_counters(bytes, packets);
        let end = self.busy_until.max(now) + service;
        self.busy_until = end;
        self.service_total_ns += service.0;
        // A message without service time leaves at once and never occupies the buffer.
        if self.buffer_limited() && service.0 > 0 {
            self.in_flight.push_back(InFlight { end, service_ns: service.0, bytes, packets });
            self.in_flight_bytes += bytes;
            self.in_flight_packets += packets;
        }
        Transmit::Delivered(end + self.cfg.latency)
    }

    /// Counters so far.
    pub fn stats(&self) -> ChannelStats {
        self.stats
    }

    /// Total time the resource has been busy serialising/processing in `[0, t]`, for `t`
    /// at or after the last `send` (transmissions already admitted count up to `t`;
    /// panics on an earlier `t`).
    pub fn busy_time(&self, t: Time) -> Duration {
        assert!(t >= self.last_send, "busy_time({t}) before the last send at {}", self.last_send);
        // From the last send on, the channel works without a break until `busy_until`:
        // each message starts when the previous one ends or when it is sent.
        Duration(self.service_total_ns - self.busy_until.saturating_since(t).0)
    }

    /// Bytes and packets in the buffer at `now` (at or after the last `send`): the
    /// messages not yet fully sent, the one being sent pro rata. Only tracked when the
    /// buffer is limited.
    fn held(&mut self, now: Time) -> (u64, u64) {
        while let Some(front) = self.in_flight.front() {
            if front.end > now {
                break;
            }
            self.in_flight_bytes -= front.bytes;
            self.in_flight_packets -= front.packets;
            self.in_flight.pop_front();
        }
        let Some(front) = self.in_flight.front() else {
            return (0, 0);
        };
        // The front message is being sent: its start is at or before `now` since it
        // started when it was sent or when its predecessor (ended by `now`) ended.
        let left_ns = front.end - now;
        debug_assert!(left_ns.0 <= front.service_ns);
        let left = |whole: u64| -> u64 {
            let part = (u128::from(whole) * u128::from(left_ns.0)).div_ceil(u128::from(front.service_ns));
            part as u64 // <= whole: left_ns <= service_ns
        };
        let sent_bytes = front.bytes - left(front.bytes);
        let sent_packets = front.packets - left(front.packets);
        (self.in_flight_bytes - sent_bytes, self.in_flight_packets - sent_packets)
    }

    fn buffer_limited(&self) -> bool {
        self.limited
    }

    /// Whether a message fits in the buffer at `now`.
    fn fits(&mut self, now: Time, bytes: u64, packets: u64) -> bool {
        let (held_bytes, held_packets) = self.held(now);
        let within = |held: u64, more: u64, limit: Option<u64>| {
            limit.is_none_or(|limit| held.saturating_add(more) <= limit)
        };
        within(held_bytes, bytes, self.cfg.buffer_bytes)
            && within(held_packets, packets, self.cfg.buffer_packets)
    }

    fn admit_counters(&mut self, bytes: u64, packets: u64) {
        self.stats.messages += 1;
        self.stats.bytes += bytes;
        self.stats.packets += packets;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: u64 = 1_000;
    const MS: u64 = 1_000_000;

    fn at(ns: u64) -> Time {
        Time(ns)
    }

    /// 8 Mbit/s: one byte every microsecond.
    fn one_byte_per_us() -> ChannelConfig {
        ChannelConfig { bandwidth_bps: Some(8_000_000), ..ChannelConfig::IDEAL }
    }

    #[test]
    fn back_to_back_messages_latency_and_idle_gap() {
        let mut ch = Channel::new(ChannelConfig { latency: Duration::from_millis(1), ..one_byte_per_us() });
        assert!(!ch.is_ideal());
        // 1000 B = 1 ms of serialisation, then 1 ms of flight.
        assert_eq!(ch.send(at(0), 1000, 1), Transmit::Delivered(at(2 * MS)));
        // Waits for the first: sent in [1, 1.5] ms.
        assert_eq!(ch.send(at(0), 500, 1), Transmit::Delivered(at(2 * MS + 500 * US)));
        // Offered during the second: sent in [1.5, 1.75] ms.
        assert_eq!(ch.send(at(500 * US), 250, 1), Transmit::Delivered(at(2 * MS + 750 * US)));
        assert_eq!(ch.busy_until(), at(1750 * US));
        // Busy time before busy_until: 1.75 ms admitted, 1.25 ms of it still to come.
        assert_eq!(ch.busy_time(at(500 * US)), Duration(500 * US));
        assert_eq!(ch.busy_time(at(MS)), Duration(MS));
        // After busy_until: all of it.
        assert_eq!(ch.busy_time(at(3 * MS)), Duration(1750 * US));
        // After an idle gap the next message starts when it is offered.
        assert_eq!(ch.send(at(5 * MS), 1000, 1), Transmit::Delivered(at(7 * MS)));
        assert_eq!(ch.busy_time(at(5 * MS + 500 * US)), Duration(2250 * US));
        assert_eq!(ch.busy_time(at(10 * MS)), Duration(2750 * US));
        let s = ch.stats();
        assert_eq!((s.messages, s.packets, s.bytes, s.dropped_packets, s.dropped_bytes), (4, 4, 2750, 0, 0));
    }

    #[test]
    fn serialisation_rounds_up_to_the_next_ns() {
        // 8 bits at 3 bit/s = 2.666...67 s.
        let ch = Channel::new(ChannelConfig { bandwidth_bps: Some(3), ..ChannelConfig::IDEAL });
        assert_eq!(ch.service_time(1, 1), Duration(2_666_666_667));
        // 10 GB at 1 Gbit/s = 80 s: 8·bytes·1e9 would overflow u64.
        let ch = Channel::new(ChannelConfig { bandwidth_bps: Some(1_000_000_000), ..ChannelConfig::IDEAL });
        assert_eq!(ch.service_time(10_000_000_000, 1), Duration::from_secs(80));
    }

    #[test]
    fn drops_by_bytes_count_the_message_being_sent_pro_rata() {
        let mut ch = Channel::new(ChannelConfig { buffer_bytes: Some(1500), ..one_byte_per_us() });
        assert_eq!(ch.send(at(0), 1000, 1), Transmit::Delivered(at(MS)));
        // 1000 + 600 > 1500.
        assert_eq!(ch.send(at(0), 600, 1), Transmit::Dropped);
        // 1000 + 500 = 1500 fits exactly.
        assert_eq!(ch.send(at(0), 500, 1), Transmit::Delivered(at(1500 * US)));
        // Half of the first is sent: 500 + 500 held, room for 500 more.
        assert_eq!(ch.send(at(500 * US), 500, 1), Transmit::Delivered(at(2 * MS)));
        assert_eq!(ch.send(at(500 * US), 1, 1), Transmit::Dropped);
        // 1 ns later 499.999 B of the first are left: a partly sent byte still counts.
        assert_eq!(ch.send(at(500 * US + 1), 1, 1), Transmit::Dropped);
        // 1 µs later one more byte has left.
        assert_eq!(ch.send(at(501 * US), 1, 1), Transmit::Delivered(at(2 * MS + US)));
        // A message larger than the buffer never passes, even into an idle channel.
        assert_eq!(ch.send(at(1_000 * MS), 1501, 2), Transmit::Dropped);
        assert_eq!(ch.send(at(1_000 * MS), 1500, 2), Transmit::Delivered(at(1_001 * MS + 500 * US)));
        let s = ch.stats();
        assert_eq!(
            s,
            ChannelStats { messages: 5, packets: 6, bytes: 3501, dropped_packets: 5, dropped_bytes: 2103 }
        );
    }

    #[test]
    fn per_packet_cost_and_drops_by_packets() {
        // A director's CPU: 10 µs per packet, room for 4 packets.
        let mut ch = Channel::new(ChannelConfig {
            per_packet: Duration::from_micros(10),
            buffer_packets: Some(4),
            ..ChannelConfig::IDEAL
        });
        assert_eq!(ch.send(at(0), 100, 3), Transmit::Delivered(at(30 * US)));
        assert_eq!(ch.send(at(0), 100, 2), Transmit::Dropped); // 3 + 2 > 4
        assert_eq!(ch.send(at(0), 100, 1), Transmit::Delivered(at(40 * US)));
        // At 10 µs the first has 2 of its 3 packets left: 2 + 1 held.
        assert_eq!(ch.send(at(10 * US), 100, 1), Transmit::Delivered(at(50 * US)));
        assert_eq!(ch.send(at(10 * US), 100, 1), Transmit::Dropped);
        // At 40 µs the first two are gone and the third has 1 packet left.
        assert_eq!(ch.send(at(40 * US), 100, 3), Transmit::Delivered(at(80 * US)));
        assert_eq!(ch.busy_time(at(40 * US)), Duration(40 * US));
        assert_eq!(ch.busy_time(at(100 * US)), Duration(80 * US));
        let s = ch.stats();
        assert_eq!(
            s,
            ChannelStats { messages: 4, packets: 8, bytes: 400, dropped_packets: 3, dropped_bytes: 200 }
        );
    }

    #[test]
    fn bandwidth_and_per_packet_cost_add_up() {
        let mut ch = Channel::new(ChannelConfig {
            latency: Duration::from_micros(100),
            bandwidth_bps: Some(1_000_000_000),
            per_packet: Duration::from_micros(1),
            ..ChannelConfig::IDEAL
        });
        // 20 kB in 14 packets: 160 µs on the wire + 14 µs of per-packet cost + 100 µs.
        assert_eq!(ch.send(at(MS), 20_000, 14), Transmit::Delivered(at(MS + 274 * US)));
        assert_eq!(ch.busy_time(at(2 * MS)), Duration(174 * US));
    }

    #[test]
    fn ideal_and_latency_only_channels_never_queue() {
        let mut ch = Channel::new(ChannelConfig::IDEAL);
        assert!(ch.is_ideal());
        assert_eq!(ch.send(at(7), 1_000_000, 1000), Transmit::Delivered(at(7)));
        assert_eq!(ch.send(at(7), 1_000_000, 1000), Transmit::Delivered(at(7)));
        assert_eq!(ch.busy_time(at(7)), Duration::ZERO);
        assert_eq!(ch.stats().bytes, 2_000_000);

        let mut ch = Channel::new(ChannelConfig {
            latency: Duration::from_millis(1),
            buffer_packets: Some(1),
            ..ChannelConfig::IDEAL
        });
        assert!(!ch.is_ideal());
        // No service time: nothing is ever held, whatever the buffer.
        for _ in 0..3 {
            assert_eq!(ch.send(at(5), 100, 1), Transmit::Delivered(at(5 + MS)));
        }
        assert_eq!(ch.busy_time(at(5)), Duration::ZERO);
    }

    #[test]
    #[should_panic(expected = "before an earlier send")]
    fn send_back_in_time_panics() {
        let mut ch = Channel::new(one_byte_per_us());
        ch.send(at(10), 1, 1);
        ch.send(at(9), 1, 1);
    }
}
