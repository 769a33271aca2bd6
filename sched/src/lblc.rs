//! lblc: placeholder, being written.

use crate::dest::DestId;
use crate::service::DestList;
use crate::{Flow, Time};

#[derive(Clone, Debug)]
pub(crate) struct LblcState;

impl LblcState {
    pub(crate) fn new(_now: Time) -> Self {
        LblcState
    }
    pub(crate) fn schedule(&mut self, _list: DestList<'_>, _now: Time, _flow: &Flow) -> Option<DestId> {
        None
    }
}
