// Polling vs WebSocket: the page of the polling_vs_ws example.
//
// Receives the same stream of updates ({"id":N,"t":T,"price":P}, see
// examples/polling_vs_ws/pvw.h) over four transports at once and shows,
// per transport, what arrived, what went missing or came twice, how stale
// it was (Date.now() - t; server and page share one machine's clock), the
// HTTP requests it took, and, from GET /stats, the bytes on the wire per
// update. window.pvwStats() returns the live numbers (used by
// tests/demo/browser_demo.mjs). The transports run in a Worker built from
// this file (so arrival times are not delayed by drawing); add ?noworker
// to the URL to run them on the main thread. Plain ES2020, no
// dependencies.
(() => {
  'use strict';

  const TRANSPORTS = ['poll', 'longpoll', 'sse', 'ws'];
  const META = {
    poll: { name: 'Short polling', how: () => `GET /poll?since=N every ${pollInterval} ms` },
    longpoll: { name: 'Long polling', how: () => 'GET /longpoll?since=N (held)' },
    sse: { name: 'Server-Sent Events', how: () => "new EventSource('/events')" },
    ws: { name: 'WebSocket', how: () => "new WebSocket('/ws')" },
  };
  const SAMPLES = 500;          // latency samples kept per transport
  const WINDOW_MS = 30000;      // the plots show the last 30 s
  const SEEN_KEEP = 8192;       // ids remembered per transport (> PVW_HISTORY)

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const nf = new Intl.NumberFormat('en-US');

  // ---- per-transport state -------------------------------------------

  // Counters (zeroed by "Reset stats") and the stream position (kept).
  function freshCounters() {
    return { received: 0, missed: 0, duplicated: 0, requests: 0, lat: [], latPos: 0 };
  }
  const S = {};
  for (const t of TRANSPORTS) {
    S[t] = Object.assign(freshCounters(), {
      maxId: null,            // highest id seen (null: nothing yet)
      seen: new Set(),        // ids seen, to spot duplicates
      seenOrder: [],          // same ids in arrival order, for pruning
      price: null, prevPrice: null, lastId: null,
      points: [],             // [server t, latency ms] for the latency plot
      spark: [],              // [receive time, price] for the sparkline
      dirty: true,
      state: 'connecting', stateText: 'connecting',
    });
  }

  let pollInterval = 1000;
  let serverRate = null;
  let baseline = null;        // /stats snapshot at page load or reset
  let lastStats = null;
  let resetAt = null;

  function addLatency(s, ms) {
    if (s.lat.length < SAMPLES) s.lat.push(ms);
    else { s.lat[s.latPos] = ms; s.latPos = (s.latPos + 1) % SAMPLES; }
  }

  function percentile(sorted, p) {
    if (!sorted.length) return null;
    const x = (sorted.length - 1) * p;
    const lo = Math.floor(x), hi = Math.ceil(x);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo);
  }

  function latencyStats(s) {
    const a = s.lat.slice().sort((x, y) => x - y);
    return { median: percentile(a, 0.5), p95: percentile(a, 0.95) };
  }

  // One update arrived on transport t at time now (Date.now()).
  function onUpdate(t, u, now) {
    const s = S[t];
    const id = Number(u.id), ts = Number(u.t), price = Number(u.price);
    if (!Number.isFinite(id) || !Number.isFinite(ts)) return;
    if (s.seen.has(id)) { s.duplicated++; s.dirty = true; return; }
    s.seen.add(id);
    s.seenOrder.push(id);
    if (s.seenOrder.length > SEEN_KEEP * 1.5) {
      for (const old of s.seenOrder.splice(0, s.seenOrder.length - SEEN_KEEP)) s.seen.delete(old);
    }
    if (s.maxId !== null) {
      if (id > s.maxId + 1) s.missed += id - s.maxId - 1;
      else if (id < s.maxId && s.missed > 0) s.missed--;   // late, was counted missing
    }
    if (s.maxId === null || id > s.maxId) s.maxId = id;
    s.received++;
    const lat = Math.max(0, now - ts);
    addLatency(s, lat);
    s.points.push([ts, lat]);
    if (Number.isFinite(price) && id >= (s.lastId ?? 0)) {
      if (s.price !== null && price !== s.price) s.prevPrice = s.price;
      s.price = price;
      s.lastId = id;
      s.spark.push([now, price]);
    }
    s.dirty = true;
  }

  // A /poll or /longpoll answer for ?since=since.
  function onBatch(t, j, since, now) {
    const s = S[t];
    if (typeof j.last === 'number' && j.last < since) {
      // The server restarted (ids count from 1 again): follow it.
      s.maxId = j.last; s.seen.clear(); s.seenOrder.length = 0; s.lastId = null;
      return;
    }
    const missed = Number(j.missed) || 0;
    if (missed > 0) {
      // ids since+1 .. since+missed fell out of the server's history.
      s.missed += missed;
      if (s.maxId === null || s.maxId < since + missed) s.maxId = since + missed;
    }
    for (const u of Array.isArray(j.updates) ? j.updates : []) onUpdate(t, u, now);
  }

  function setState(t, state, text) {
    const s = S[t];
    if (s.state !== state || s.stateText !== text) {
      s.state = state; s.stateText = text; s.dirty = true;
    }
  }

  // ---- the four transports -------------------------------------------
  //
  // They run in a dedicated Worker (made from transportCore's source), so
  // the moment an update arrives is stamped on a thread that is not busy
  // drawing this page: the latency shown is the transport's, not the
  // page's. Without Worker support they run here, on the main thread.
  // The core posts to the page:
  //   {k:'batch', t, j, since, now}   a /poll or /longpoll answer
  //   {k:'update', t, u, now}         one SSE or WebSocket update
  //   {k:'req', t}                    one more HTTP request / handshake
  //   {k:'state', t, state, text}     connecting / live / error
  //   {k:'rate', value}  {k:'echo', rtt}  {k:'wsopen', open}
  //   {k:'ctl', up, down}  bytes of our own echo/rate frames (see table)
  //   {k:'no-sse'}                    EventSource missing in the worker
  // and takes {k:'start', origin, last, interval, echo, only},
  // {k:'interval', v}, {k:'rate', v}, {k:'echo', on}.
  function transportCore(post) {
    let origin = '', pollInterval = 1000, echoOn = true;
    const cursor = { poll: 0, longpoll: 0 };
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const state = (t, st, text) => post({ k: 'state', t, state: st, text });
    const nextSince = (j, since) => {
      let c = since;
      if (typeof j.last === 'number' && j.last < since) return j.last;  // server restarted
      for (const u of Array.isArray(j.updates) ? j.updates : []) if (u.id > c) c = u.id;
      return c;
    };

    // Short polling: one GET every pollInterval ms (measured from the
    // start of the previous one), never two at once.
    let pollTimer = null, pollBusy = false, pollStarted = 0;
    async function pollOnce() {
      pollTimer = null;
      pollBusy = true;
      pollStarted = performance.now();
      const since = cursor.poll;
      post({ k: 'req', t: 'poll' });
      try {
        const r = await fetch(`${origin}/poll?since=${since}`, { cache: 'no-store' });
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        const j = await r.json();
        const now = Date.now();
        cursor.poll = nextSince(j, since);
        post({ k: 'batch', t: 'poll', j, since, now });
        state('poll', 'live', 'live');
      } catch (e) {
        state('poll', 'error', 'no answer');
      }
      pollBusy = false;
      schedulePoll();
    }
    function schedulePoll() {
      if (pollBusy) return;
      clearTimeout(pollTimer);
      pollTimer = setTimeout(pollOnce, Math.max(0, pollInterval - (performance.now() - pollStarted)));
    }

    // Long polling: ask, and when the answer comes ask again at once;
    // after an error wait 1 s and resume from the last id.
    async function longpollLoop() {
      for (;;) {
        const since = cursor.longpoll;
        const t0 = performance.now();
        post({ k: 'req', t: 'longpoll' });
        try {
          const r = await fetch(`${origin}/longpoll?since=${since}`, { cache: 'no-store' });
          if (!r.ok) throw new Error(`HTTP ${r.status}`);
          const j = await r.json();
          const now = Date.now();
          cursor.longpoll = nextSince(j, since);
          post({ k: 'batch', t: 'longpoll', j, since, now });
          state('longpoll', 'live', 'live');
          // An empty answer that came back at once would spin: pace it.
          if (!(j.updates && j.updates.length) && performance.now() - t0 < 100) await sleep(250);
        } catch (e) {
          state('longpoll', 'error', 'retrying in 1 s');
          await sleep(1000);
        }
      }
    }

    // Server-Sent Events: the browser reconnects by itself and sends
    // Last-Event-ID, so the server resends what we missed. If it gives up
    // (readyState CLOSED) we start a new one.
    let sseBackoff = 1000;
    function sseConnect() {
      const es = new EventSource(`${origin}/events`);
      post({ k: 'req', t: 'sse' });
      state('sse', 'connecting', 'connecting');
      es.onopen = () => { sseBackoff = 1000; state('sse', 'live', 'live'); };
      es.onmessage = (e) => {
        const now = Date.now();
        let u;
        try { u = JSON.parse(e.data); } catch (err) { return; }
        post({ k: 'update', t: 'sse', u, now });
      };
      es.onerror = () => {
        if (es.readyState === 0) {          // CONNECTING: it asks again
          post({ k: 'req', t: 'sse' });
          state('sse', 'connecting', 'reconnecting');
        } else if (es.readyState === 2) {   // CLOSED: it gave up
          es.close();
          state('sse', 'error', `retrying in ${Math.round(sseBackoff / 1000)} s`);
          setTimeout(sseConnect, sseBackoff);
          sseBackoff = Math.min(sseBackoff * 2, 10000);
        }
      };
    }

    // WebSocket: updates down; echo and rate up; reconnect with backoff.
    let ws = null, wsBackoff = 500;
    const wsOpen = () => ws !== null && ws.readyState === 1;
    // Frame sizes of our own small text messages (payload < 126 bytes):
    // the page masks (2 + 4 header bytes), the server does not (2).
    const frame = (s, masked) => s.length + (s.length < 126 ? 2 : 4) + (masked ? 4 : 0);
    function wsSend(obj) {
      const s = JSON.stringify(obj);
      ws.send(s);
      post({ k: 'ctl', up: frame(s, true), down: 0 });
    }
    function wsConnect() {
      post({ k: 'req', t: 'ws' });
      state('ws', 'connecting', 'connecting');
      let sock;
      try {
        sock = new WebSocket(`${origin.replace(/^http/, 'ws')}/ws`);
      } catch (e) {
        setTimeout(wsConnect, wsBackoff);
        return;
      }
      ws = sock;
      sock.onopen = () => {
        wsBackoff = 500;
        state('ws', 'live', 'live');
        post({ k: 'wsopen', open: true });
      };
      sock.onmessage = (e) => {
        const now = Date.now();
        let m;
        try { m = JSON.parse(e.data); } catch (err) { return; }
        if (m.type === undefined && m.id !== undefined) {   // an update
          post({ k: 'update', t: 'ws', u: m, now });
        } else if (m.type === 'echo') {
          post({ k: 'ctl', up: 0, down: frame(e.data, false) });
          const sent = echoSent.get(Number(m.t));
          if (sent === undefined) return;
          echoSent.delete(Number(m.t));
          post({ k: 'echo', rtt: performance.now() - sent });
        } else if (m.type === 'rate') {
          post({ k: 'ctl', up: 0, down: frame(e.data, false) });
          post({ k: 'rate', value: Number(m.value) });
        }
      };
      sock.onclose = () => {
        if (ws === sock) ws = null;
        state('ws', 'error', `reconnecting in ${+(wsBackoff / 1000).toFixed(1)} s`);
        post({ k: 'wsopen', open: false });
        setTimeout(wsConnect, wsBackoff);
        wsBackoff = Math.min(wsBackoff * 2, 8000);
      };
    }

    // Echo round trip every second: page -> server -> page.
    const echoSent = new Map();   // t -> performance.now() at send
    function echoTick() {
      if (!echoOn || !wsOpen()) return;
      let t = Date.now();
      while (echoSent.has(t)) t++;
      echoSent.set(t, performance.now());
      wsSend({ type: 'echo', t });
      for (const [k, v] of echoSent) if (performance.now() - v > 10000) echoSent.delete(k);
    }

    return (m) => {
      if (m.k === 'start') {
        origin = m.origin;
        pollInterval = m.interval;
        echoOn = m.echo;
        const run = m.only || ['poll', 'longpoll', 'sse', 'ws'];
        cursor.poll = cursor.longpoll = m.last;
        if (run.includes('poll')) pollOnce();
        if (run.includes('longpoll')) longpollLoop();
        if (run.includes('sse')) {
          if (typeof EventSource === 'function') sseConnect();
          else post({ k: 'no-sse' });
        }
        if (run.includes('ws')) {
          wsConnect();
          setInterval(echoTick, 1000);
        }
      } else if (m.k === 'interval') {
        pollInterval = m.v;
        schedulePoll();
      } else if (m.k === 'rate') {
        if (wsOpen()) wsSend({ type: 'rate', value: m.v });
      } else if (m.k === 'echo') {
        echoOn = m.on;
        if (echoOn) echoTick();
      }
    };
  }

  // Start the core in a worker (or here), and route what it says.
  let toCore = () => {};
  let inWorker = false;
  let wsIsOpen = false;
  let echoOn = true;
  let echoRtt = null, echoCount = 0;
  let ctlBytes = { up: 0, down: 0 };   // since the baseline

  function fromCore(m) {
    switch (m.k) {
      case 'batch': onBatch(m.t, m.j, m.since, m.now); break;
      case 'update': onUpdate(m.t, m.u, m.now); break;
      case 'req': S[m.t].requests++; S[m.t].dirty = true; break;
      case 'state': setState(m.t, m.state, m.text); break;
      case 'rate': setServerRate(m.value); break;
      case 'echo': onEcho(m.rtt); break;
      case 'wsopen': wsIsOpen = m.open; updateControls(); break;
      case 'ctl': ctlBytes.up += m.up; ctlBytes.down += m.down; break;
      case 'no-sse': {
        // This browser has no EventSource in workers: run SSE here.
        const local = transportCore(fromCore);
        local({ k: 'start', origin: location.origin, last: 0, interval: pollInterval, echo: false, only: ['sse'] });
        break;
      }
      default: break;
    }
  }

  function startCore(last) {
    const start = { k: 'start', origin: location.origin, last, interval: pollInterval, echo: echoOn };
    try {
      if (/[?&]noworker\b/.test(location.search)) throw new Error('no worker asked for');
      const src = `'use strict';\nconst transportCore = ${transportCore.toString()};\n` +
        'const cmd = transportCore((m) => postMessage(m));\n' +
        'onmessage = (e) => cmd(e.data);\n';
      const url = URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
      const w = new Worker(url);
      w.onmessage = (e) => fromCore(e.data);
      toCore = (m) => w.postMessage(m);
      inWorker = true;
    } catch (e) {
      toCore = transportCore(fromCore);
      inWorker = false;
    }
    toCore(start);
  }

  function onEcho(rtt) {
    echoRtt = rtt;
    echoCount++;
    $('#echo-rtt').textContent = fmtMs(echoRtt);
    const p = $('#echo-pulse');
    p.classList.remove('beat');
    void p.offsetWidth;  // restart the animation
    p.classList.add('beat');
  }

  // ---- controls --------------------------------------------------------

  function setServerRate(r) {
    if (!Number.isFinite(r) || r <= 0) return;
    serverRate = r;
    let matched = false;
    for (const el of $$('input[name=rate]')) {
      el.checked = Number(el.value) === r;
      matched = matched || el.checked;
    }
    $('#rate-hint').textContent = matched ? 'sent over the WebSocket'
      : `server: ${fmtNum(r)}/s`;
  }

  function updateControls() {
    const open = wsIsOpen;
    $('#rate').classList.toggle('disabled', !open);
    for (const el of $$('input[name=rate]')) el.disabled = !open;
    $('#echo-box').classList.toggle('disabled', !open);
    if (!open) $('#rate-hint').textContent = 'needs the WebSocket';
    else if (serverRate !== null) setServerRate(serverRate);
  }

  function initControls() {
    for (const el of $$('input[name=rate]')) {
      el.addEventListener('change', () => {
        if (!el.checked) return;
        if (wsIsOpen) toCore({ k: 'rate', v: Number(el.value) });
        else if (serverRate !== null) setServerRate(serverRate);
      });
    }
    for (const el of $$('input[name=interval]')) {
      el.addEventListener('change', () => {
        if (!el.checked) return;
        pollInterval = Number(el.value);
        S.poll.dirty = true;
        toCore({ k: 'interval', v: pollInterval });
      });
    }
    const checked = $('input[name=interval]:checked');
    if (checked) pollInterval = Number(checked.value);
    for (const el of $$('input[name=scale]')) {
      el.addEventListener('change', () => { if (el.checked) plotScale = el.value; });
    }
    $('#echo').addEventListener('click', () => {
      echoOn = !echoOn;
      const b = $('#echo');
      b.classList.toggle('on', echoOn);
      b.setAttribute('aria-pressed', String(echoOn));
      $('#echo-label').textContent = echoOn ? 'Echo on' : 'Echo off';
      toCore({ k: 'echo', on: echoOn });
    });
    $('#reset').addEventListener('click', resetStats);
    updateControls();
  }

  async function resetStats() {
    for (const t of TRANSPORTS) {
      Object.assign(S[t], freshCounters());
      S[t].points = [];
      S[t].dirty = true;
    }
    resetAt = new Date();
    try { baseline = await getStats(); } catch (e) { baseline = null; }
    ctlBytes = { up: 0, down: 0 };
    lastStats = baseline;
    renderTable();
  }

  // ---- /stats: server counters and the comparison table ------------------

  async function getStats() {
    const r = await fetch('/stats', { cache: 'no-store' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    return r.json();
  }

  let statsOk = false;
  async function statsTick() {
    try {
      const st = await getStats();
      const b = baseline && baseline.transports;
      // Counters went backwards: the server restarted, count from zero.
      if (!b || (lastStats && st.uptime_ms < lastStats.uptime_ms)) {
        baseline = { transports: {} };
        ctlBytes = { up: 0, down: 0 };
        // ids count from 1 again: forget the old stream's ids.
        for (const t of TRANSPORTS) {
          const s = S[t];
          s.maxId = null; s.seen.clear(); s.seenOrder.length = 0; s.lastId = null;
        }
      }
      lastStats = st;
      statsOk = true;
      if (typeof st.rate === 'number' && st.rate !== serverRate) setServerRate(st.rate);
    } catch (e) {
      statsOk = false;
    }
    renderServer();
  }

  function delta(t) {
    const cur = lastStats && lastStats.transports && lastStats.transports[t];
    if (!cur) return null;
    const base = (baseline && baseline.transports && baseline.transports[t]) || {};
    const d = {};
    for (const k of ['requests', 'bytes_in', 'bytes_out', 'updates']) {
      d[k] = Math.max(0, (Number(cur[k]) || 0) - (Number(base[k]) || 0));
    }
    d.clients = Number(cur.clients) || 0;
    return d;
  }

  // Bytes per update from the server's counters. The WebSocket row leaves
  // out this page's own echo and rate frames (the page knows their exact
  // sizes): they are not update traffic, and at a low rate they would
  // outweigh it. The raw quotients are kept as *Raw.
  function tableRow(t) {
    const d = delta(t);
    if (!d || !d.updates) {
      return {
        bytesDownPerUpdate: null, bytesUpPerUpdate: null, requestsPerUpdate: null,
        bytesDownPerUpdateRaw: null, bytesUpPerUpdateRaw: null, updates: d ? d.updates : 0,
      };
    }
    const ctl = t === 'ws' ? ctlBytes : { up: 0, down: 0 };
    return {
      bytesDownPerUpdate: Math.max(0, d.bytes_out - ctl.down) / d.updates,
      bytesUpPerUpdate: Math.max(0, d.bytes_in - ctl.up) / d.updates,
      requestsPerUpdate: d.requests / d.updates,
      bytesDownPerUpdateRaw: d.bytes_out / d.updates,
      bytesUpPerUpdateRaw: d.bytes_in / d.updates,
      updates: d.updates,
    };
  }

  function clientRow(t) {
    const s = S[t];
    const l = latencyStats(s);
    return {
      received: s.received, missed: s.missed, duplicated: s.duplicated,
      median: l.median, p95: l.p95, requests: s.requests,
    };
  }

  // Columns of the table: key, where it comes from, better is lower?, format.
  const COLUMNS = [
    { k: 'received', src: 'client', low: false, fmt: fmtNum },
    { k: 'missed', src: 'client', low: true, fmt: fmtNum },
    { k: 'duplicated', src: 'client', low: true, fmt: fmtNum },
    { k: 'median', src: 'client', low: true, fmt: (v) => fmtMs(v) + unit(v, ' ms') },
    { k: 'p95', src: 'client', low: true, fmt: (v) => fmtMs(v) + unit(v, ' ms') },
    { k: 'requests', src: 'client', low: true, fmt: fmtNum },
    { k: 'bytesDownPerUpdate', src: 'server', low: true, fmt: fmtBytes, bar: true },
    { k: 'bytesUpPerUpdate', src: 'server', low: true, fmt: fmtBytes, bar: true },
    { k: 'requestsPerUpdate', src: 'server', low: true, fmt: fmtRatio },
  ];

  function buildTable() {
    const body = $('#cmp-body');
    for (const t of TRANSPORTS) {
      const tr = document.createElement('tr');
      tr.className = `t-${t}`;
      tr.dataset.t = t;
      const th = document.createElement('th');
      th.scope = 'row';
      th.className = 'tname';
      th.innerHTML = '<i class="swatch"></i>';
      th.append(META[t].name);
      tr.append(th);
      for (const c of COLUMNS) {
        const td = document.createElement('td');
        td.dataset.k = c.k;
        if (c.bar) td.innerHTML = '<span class="v"></span><span class="bar"><i></i></span>';
        else td.innerHTML = '<span class="v"></span>';
        tr.append(td);
      }
      body.append(tr);
    }
  }

  function renderTable() {
    const rows = {};
    for (const t of TRANSPORTS) rows[t] = Object.assign(clientRow(t), tableRow(t));
    for (const c of COLUMNS) {
      const vals = TRANSPORTS.map((t) => rows[t][c.k]).filter((v) => v !== null && Number.isFinite(v));
      let best = null, max = 0;
      if (vals.length) {
        best = c.low ? Math.min(...vals) : Math.max(...vals);
        max = Math.max(...vals);
        // Nothing to single out when everyone is equal.
        if (vals.length < 2 || vals.every((v) => v === vals[0])) best = null;
      }
      for (const t of TRANSPORTS) {
        const td = $(`tr[data-t="${t}"] td[data-k="${c.k}"]`);
        const v = rows[t][c.k];
        const has = v !== null && Number.isFinite(v);
        td.querySelector('.v').textContent = has ? c.fmt(v) : '–';
        const isBest = has && best !== null && v === best;
        td.classList.toggle('best', isBest);
        if (c.bar) {
          const w = has && max > 0 ? Math.max(2, (v / max) * 100) : 0;
          td.querySelector('.bar i').style.width = `${w}%`;
        }
      }
    }
    const since = resetAt ? `Since reset at ${resetAt.toLocaleTimeString()}` : 'Since page load';
    $('#table-sub').textContent = `${since}. Best value in each column highlighted; ` +
      'server columns count every client of this server.';
  }

  function renderServer() {
    const dot = $('#server-dot');
    dot.className = 'dot ' + (statsOk ? 'live' : 'error');
    if (!lastStats || !statsOk) {
      $('#server-text').textContent = 'server not answering /stats';
      return;
    }
    const st = lastStats;
    let clients = 0;
    for (const t of TRANSPORTS) clients += Number(st.transports?.[t]?.clients) || 0;
    $('#server-text').innerHTML = '';
    const part = (label, value) => {
      const span = document.createElement('span');
      span.className = 'kv';
      span.innerHTML = `<small>${label}</small> `;
      const b = document.createElement('b');
      b.textContent = value;
      span.append(b);
      $('#server-text').append(span);
    };
    part('rate', `${fmtNum(st.rate)}/s`);
    part('update', `#${fmtNum(st.last)}`);
    part('up', fmtDuration(st.uptime_ms));
    part('connections', fmtNum(clients));
  }

  // ---- formatting --------------------------------------------------------

  function fmtNum(v) {
    if (v === null || v === undefined || !Number.isFinite(Number(v))) return '–';
    v = Number(v);
    return Number.isInteger(v) ? nf.format(v) : nf.format(Math.round(v * 100) / 100);
  }
  function fmtMs(v, fine) {
    if (v === null || !Number.isFinite(v)) return '–';
    if (fine && v < 10) return v.toFixed(2);
    if (v < 10) return (Math.round(v * 10) / 10).toString();
    return nf.format(Math.round(v));
  }
  function unit(v, u) { return v === null || !Number.isFinite(v) ? '' : u; }
  function fmtBytes(v) {
    if (v >= 10000) return `${nf.format(Math.round(v / 100) / 10)} kB`;
    if (v >= 100) return `${nf.format(Math.round(v))} B`;
    return `${(Math.round(v * 10) / 10).toString()} B`;
  }
  function fmtRatio(v) {
    if (v === 0) return '0';
    if (v >= 10) return nf.format(Math.round(v));
    if (v >= 0.1) return (Math.round(v * 100) / 100).toString();
    return v.toPrecision(2).replace(/e.*$/, '');
  }
  function fmtDuration(ms) {
    const s = Math.floor((Number(ms) || 0) / 1000);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), ss = s % 60;
    if (h) return `${h}h ${String(m).padStart(2, '0')}m`;
    if (m) return `${m}m ${String(ss).padStart(2, '0')}s`;
    return `${ss}s`;
  }

  // ---- panels ------------------------------------------------------------

  const panels = {};
  function buildPanels() {
    const tpl = $('#panel-tpl');
    for (const t of TRANSPORTS) {
      const node = tpl.content.firstElementChild.cloneNode(true);
      node.classList.add(`t-${t}`);
      node.dataset.t = t;
      node.id = `panel-${t}`;
      $('.name', node).textContent = META[t].name;
      $('#panels').append(node);
      panels[t] = {
        root: node,
        how: $('.how', node),
        status: $('.status', node),
        statusText: $('.status b', node),
        price: $('.price', node),
        tick: $('.tick', node),
        lastId: $('.last-id', node),
        spark: $('.spark', node),
        dd: Object.fromEntries($$('dd', node).map((d) => [d.dataset.k, d])),
      };
    }
  }

  function renderPanel(t) {
    const s = S[t], p = panels[t];
    p.how.textContent = META[t].how();
    p.status.dataset.state = s.state;
    p.statusText.textContent = s.stateText;
    if (s.price !== null) {
      const txt = s.price.toFixed(2);
      if (p.price.textContent !== txt) {
        p.price.textContent = txt;
        const up = s.prevPrice === null ? null : s.price >= s.prevPrice;
        p.tick.className = 'tick ' + (up === null ? '' : up ? 'up' : 'down');
        p.price.classList.remove('flash-up', 'flash-down');
        if (up !== null) {
          void p.price.offsetWidth;
          p.price.classList.add(up ? 'flash-up' : 'flash-down');
        }
      }
      p.lastId.textContent = `#${nf.format(s.lastId)}`;
    }
    const c = clientRow(t);
    p.dd.received.textContent = fmtNum(c.received);
    p.dd.missed.textContent = fmtNum(c.missed);
    p.dd.duplicated.textContent = fmtNum(c.duplicated);
    p.dd.median.innerHTML = c.median === null ? '–' : `${fmtMs(c.median)}<small> ms</small>`;
    p.dd.p95.innerHTML = c.p95 === null ? '–' : `${fmtMs(c.p95)}<small> ms</small>`;
    p.dd.requests.textContent = fmtNum(c.requests);
    p.dd.missed.classList.toggle('warn', c.missed > 0);
    p.dd.duplicated.classList.toggle('warn', c.duplicated > 0);
  }

  // ---- canvases ----------------------------------------------------------

  let colors = {};
  let theme = {};
  function readColors() {
    const cs = getComputedStyle(document.documentElement);
    for (const t of TRANSPORTS) colors[t] = cs.getPropertyValue(`--${t}`).trim() || '#fff';
    theme = {
      grid: cs.getPropertyValue('--grid').trim() || 'rgba(255,255,255,.07)',
      axis: cs.getPropertyValue('--muted').trim() || '#8b93a7',
      text: cs.getPropertyValue('--text').trim() || '#e6e9f2',
      font: cs.getPropertyValue('font-family') || 'system-ui, sans-serif',
    };
  }

  // Size a canvas's backing store to its CSS box times devicePixelRatio.
  function fitCanvas(cv) {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(cv.clientWidth * dpr));
    const h = Math.max(1, Math.round(cv.clientHeight * dpr));
    if (cv.width !== w || cv.height !== h) { cv.width = w; cv.height = h; }
    const ctx = cv.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return { ctx, w: cv.clientWidth, h: cv.clientHeight };
  }

  function withAlpha(color, a) {
    // colors are #rrggbb in style.css
    const m = /^#([0-9a-f]{6})$/i.exec(color);
    if (!m) return color;
    const n = parseInt(m[1], 16);
    return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${a})`;
  }

  function drawSpark(t, now) {
    const s = S[t];
    const { ctx, w, h } = fitCanvas(panels[t].spark);
    ctx.clearRect(0, 0, w, h);
    const from = now - WINDOW_MS;
    while (s.spark.length > 2 && s.spark[1][0] < from) s.spark.shift();
    const pts = s.spark;
    if (!pts.length) {
      ctx.fillStyle = theme.axis;
      ctx.font = `12px ${theme.font}`;
      ctx.textAlign = 'center';
      ctx.fillText('waiting for updates…', w / 2, h / 2 + 4);
      return;
    }
    let lo = Infinity, hi = -Infinity;
    for (const [, v] of pts) { if (v < lo) lo = v; if (v > hi) hi = v; }
    const pad = Math.max((hi - lo) * 0.15, 0.05);
    lo -= pad; hi += pad;
    const x = (tm) => ((tm - from) / WINDOW_MS) * w;
    const y = (v) => 4 + (1 - (v - lo) / (hi - lo)) * (h - 8);
    // A step line: the price shown is the last one received.
    ctx.beginPath();
    ctx.moveTo(Math.max(0, x(pts[0][0])), y(pts[0][1]));
    for (let i = 1; i < pts.length; i++) {
      ctx.lineTo(x(pts[i][0]), y(pts[i - 1][1]));
      ctx.lineTo(x(pts[i][0]), y(pts[i][1]));
    }
    ctx.lineTo(w, y(pts[pts.length - 1][1]));
    const c = colors[t];
    ctx.strokeStyle = c;
    ctx.lineWidth = 1.5;
    ctx.lineJoin = 'round';
    ctx.stroke();
    ctx.lineTo(w, h);
    ctx.lineTo(Math.max(0, x(pts[0][0])), h);
    ctx.closePath();
    const g = ctx.createLinearGradient(0, 0, 0, h);
    g.addColorStop(0, withAlpha(c, 0.28));
    g.addColorStop(1, withAlpha(c, 0));
    ctx.fillStyle = g;
    ctx.fill();
    const ly = y(pts[pts.length - 1][1]);
    ctx.beginPath();
    ctx.arc(w - 3, ly, 2.5, 0, Math.PI * 2);
    ctx.fillStyle = c;
    ctx.fill();
  }

  let plotScale = 'log';
  let plotMax = 100;          // animated top of the y axis (ms)

  function niceCeil(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function drawPlot(now) {
    const cv = $('#plot');
    const { ctx, w, h } = fitCanvas(cv);
    ctx.clearRect(0, 0, w, h);
    const L = 56, R = 14, T = 12, B = 26;
    const pw = w - L - R, ph = h - T - B;
    const from = now - WINDOW_MS;

    let vmax = 1;
    for (const t of TRANSPORTS) {
      const pts = S[t].points;
      let i = 0;
      while (i < pts.length && pts[i][0] < from - 2000) i++;
      if (i) pts.splice(0, i);
      for (const p of pts) if (p[0] >= from && p[1] > vmax) vmax = p[1];
    }
    const log = plotScale === 'log';
    const target = log ? Math.max(100, Math.pow(10, Math.ceil(Math.log10(vmax * 1.05))))
      : Math.max(10, niceCeil(vmax * 1.1));
    plotMax += (target - plotMax) * 0.15;
    if (Math.abs(target - plotMax) < target * 0.002) plotMax = target;

    const LMIN = 0.5;
    const y = log
      ? (v) => T + ph * (1 - (Math.log10(Math.max(v, LMIN)) - Math.log10(LMIN)) / (Math.log10(plotMax) - Math.log10(LMIN)))
      : (v) => T + ph * (1 - Math.min(v, plotMax * 1.2) / plotMax);
    const x = (tm) => L + ((tm - from) / WINDOW_MS) * pw;

    // grid + y labels
    ctx.font = `11px ${theme.font}`;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'right';
    ctx.lineWidth = 1;
    const hline = (v, strong, label) => {
      const yy = Math.round(y(v)) + 0.5;
      if (yy < T - 1 || yy > T + ph + 1) return;
      ctx.strokeStyle = strong ? theme.grid : withAlpha('#ffffff', 0.025);
      ctx.beginPath(); ctx.moveTo(L, yy); ctx.lineTo(L + pw, yy); ctx.stroke();
      if (label) { ctx.fillStyle = theme.axis; ctx.fillText(label, L - 8, yy); }
    };
    if (log) {
      for (let d = 1; d <= plotMax * 1.001; d *= 10) {
        hline(d, true, d >= 1000 ? `${d / 1000} s` : `${d} ms`);
        for (const m of [2, 5]) if (d * m < plotMax) hline(d * m, false, null);
      }
    } else {
      const step = niceCeil(plotMax / 5);
      for (let v = 0; v <= plotMax * 1.001; v += step) {
        hline(v, true, v >= 1000 ? `${v / 1000} s` : `${v} ms`);
      }
    }
    // x labels: seconds ago
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (let s = 0; s <= 30; s += pw < 520 ? 10 : 5) {
      const xx = Math.round(L + pw - (s / 30) * pw) + 0.5;
      ctx.strokeStyle = withAlpha('#ffffff', 0.03);
      ctx.beginPath(); ctx.moveTo(xx, T); ctx.lineTo(xx, T + ph); ctx.stroke();
      ctx.fillStyle = theme.axis;
      ctx.fillText(s === 0 ? 'now' : `−${s} s`, xx, T + ph + 8);
    }

    ctx.save();
    ctx.beginPath();
    ctx.rect(L, T - 2, pw + 2, ph + 4);
    ctx.clip();
    // Draw the slow transports first so the fast ones stay on top.
    for (const t of ['poll', 'longpoll', 'sse', 'ws']) {
      const pts = S[t].points;
      if (!pts.length) continue;
      const c = colors[t];
      ctx.strokeStyle = withAlpha(c, 0.85);
      ctx.lineWidth = 1.6;
      ctx.lineJoin = 'round';
      ctx.beginPath();
      let started = false;
      for (const [tm, v] of pts) {
        const xx = x(tm), yy = y(v);
        if (!started) { ctx.moveTo(xx, yy); started = true; } else ctx.lineTo(xx, yy);
      }
      ctx.stroke();
      const visible = pts.length;
      if (visible < 700) {
        ctx.fillStyle = c;
        const r = visible < 200 ? 2.2 : 1.4;
        for (const [tm, v] of pts) {
          ctx.beginPath();
          ctx.arc(x(tm), y(v), r, 0, Math.PI * 2);
          ctx.fill();
        }
      }
    }
    ctx.restore();
    // frame
    ctx.strokeStyle = theme.grid;
    ctx.strokeRect(L + 0.5, T + 0.5, pw, ph);
  }

  function buildLegend() {
    const lg = $('#legend');
    for (const t of TRANSPORTS) {
      const s = document.createElement('span');
      s.className = `key t-${t}`;
      s.innerHTML = '<i class="swatch"></i>';
      s.append(META[t].name);
      const b = document.createElement('b');
      b.className = 'key-v';
      s.append(b);
      lg.append(s);
    }
  }
  function renderLegend() {
    for (const t of TRANSPORTS) {
      const l = latencyStats(S[t]);
      $(`#legend .t-${t} .key-v`).textContent = l.median === null ? '' : `${fmtMs(l.median)} ms`;
    }
  }

  // ---- main loop ---------------------------------------------------------

  let lastText = 0;
  function frame() {
    const now = Date.now();
    if (!document.hidden) {
      // Numbers 5 times a second (readable), canvases every frame (smooth).
      if (performance.now() - lastText > 200) {
        lastText = performance.now();
        for (const t of TRANSPORTS) if (S[t].dirty) { renderPanel(t); S[t].dirty = false; }
        renderTable();
        renderLegend();
      }
      for (const t of TRANSPORTS) drawSpark(t, now);
      drawPlot(now);
    }
    requestAnimationFrame(frame);
  }

  window.pvwStats = () => {
    const out = {};
    for (const t of TRANSPORTS) out[t] = clientRow(t);
    out.table = {};
    for (const t of TRANSPORTS) {
      const r = tableRow(t);
      out.table[t] = {
        bytesDownPerUpdate: r.bytesDownPerUpdate,
        bytesUpPerUpdate: r.bytesUpPerUpdate,
        requestsPerUpdate: r.requestsPerUpdate,
        bytesDownPerUpdateRaw: r.bytesDownPerUpdateRaw,
        bytesUpPerUpdateRaw: r.bytesUpPerUpdateRaw,
        updates: r.updates,
      };
    }
    out.rate = serverRate;
    out.pollInterval = pollInterval;
    out.echo = { rtt: echoRtt, replies: echoCount };
    out.worker = inWorker;
    return out;
  };

  async function start() {
    readColors();
    buildPanels();
    buildTable();
    buildLegend();
    initControls();
    requestAnimationFrame(frame);
    // Start every transport at the server's current update, so none is
    // handed the history (and the server's counters start from here).
    // No answer yet: keep asking.
    let st = null;
    for (;;) {
      try { st = await getStats(); break; } catch (e) { renderServer(); await sleep(1000); }
    }
    baseline = lastStats = st;
    statsOk = true;
    const last = Number(st.last) || 0;
    if (typeof st.rate === 'number') setServerRate(st.rate);
    renderServer();
    for (const t of ['poll', 'longpoll']) S[t].maxId = last;
    startCore(last);
    setInterval(statsTick, 1000);
    window.addEventListener('resize', () => { for (const t of TRANSPORTS) S[t].dirty = true; });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
