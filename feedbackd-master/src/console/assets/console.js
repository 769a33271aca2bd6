// feedbackd-master's console: the monitor's live updates. The only script of the console,
// served by the binary (CSP default-src 'self': no inline script, no CDN).
//
// Every 2 s (10 s while the tab is hidden; longer after failures), one request at a time:
// GET /api/snapshot?since=VERSION answers 204 when nothing changed, else the rows changed
// since VERSION as arrays [rs, weight, active, inactive, cps, agent, state, capacity], and
// every row's report age (deciseconds, in the page's row order). Cells are patched by
// data-rs through a map built once, so an update costs the rows that changed, not the
// table. A new list of servers reloads the page.
(function () {
  'use strict';
  var mon = document.getElementById('monitor');
  if (!mon || !window.fetch) { return; }
  var version = Number(mon.dataset.version);
  var layout = mon.dataset.layout;
  var NAMES = ['weight', 'active', 'inactive', 'cps', 'agent', 'state', 'capacity'];
  var rows = new Map();
  var order = [];
  mon.querySelectorAll('tr[data-rs]').forEach(function (tr) {
    var r = { tr: tr, cells: [], age: tr.querySelector('td.age') };
    NAMES.forEach(function (n) { r.cells.push(tr.querySelector('td.' + n)); });
    rows.set(tr.dataset.rs, r);
    order.push(r);
  });
  var updated = document.getElementById('updated');
  var failures = 0;

  function set(el, v) {
    if (el && el.textContent !== v) { el.textContent = v; }
  }

  function ages(a) {
    for (var i = 0; i < order.length && i < a.length; i++) {
      set(order[i].age, a[i] === null ? '-' : (a[i] / 10).toFixed(1) + 's');
    }
  }

  function apply(d) {
    if (String(d.layout) !== layout || d.count !== rows.size) { window.location.reload(); return; }
    for (var i = 0; i < d.rows.length; i++) {
      var a = d.rows[i];
      var r = rows.get(a[0]);
      if (!r) { window.location.reload(); return; }
      for (var j = 0; j < NAMES.length; j++) { set(r.cells[j], a[j + 1]); }
      r.tr.dataset.state = a[6];
    }
    version = d.version;
    mon.dataset.version = String(version);
    ages(d.ages);
  }

  function status(ok) {
    if (!updated) { return; }
    updated.dataset.state = ok ? 'ok' : 'stale';
    updated.textContent = ok ? 'live' : 'stale: the master does not answer';
  }

  function poll() {
    fetch('/api/snapshot?since=' + version, { credentials: 'same-origin', cache: 'no-store' })
      .then(function (resp) {
        if (resp.status === 401) { window.location.href = '/login'; return null; }
        if (resp.status === 204) { return null; }
        if (!resp.ok) { throw new Error('HTTP ' + resp.status); }
        return resp.json();
      })
      .then(function (d) { if (d) { apply(d); } failures = 0; status(true); })
      .catch(function () { failures += 1; status(false); })
      .then(schedule);
  }

  function schedule() {
    var delay = document.hidden ? 10000 : 2000 * Math.min(1 + failures, 5);
    window.setTimeout(poll, delay);
  }

  schedule();
})();
