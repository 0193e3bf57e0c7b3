/* shardz dashboard: a single page on the coordinator's HTTP API (docs/PROTOCOL.md sections 3,
 * 7 and 8; docs/DASHBOARD.md). Plain browser JavaScript, no build step, no network but the
 * coordinator. Live updates come from the namespace's watch (a long-poll loop); actions go
 * through a confirmation dialog; API errors ({code, message}) are shown as they come. */
'use strict';
(() => {
  // ---- configuration ------------------------------------------------------------------------
  const params = new URLSearchParams(location.search);
  // Same origin by default; ?api=http://127.0.0.1:7557 for development (the coordinator must
  // then allow the page's origin, or sit behind a proxy).
  const API = (params.get('api') || '').replace(/\/+$/, '');
  const SECRET_KEY = 'shardz.secret ' + (API || location.origin);
  const WATCH_TIMEOUT_MS = 30000;
  const MIN_WATCH_GAP_MS = 300; // at most ~3 state transfers a second under heavy churn
  const PERIODIC_MS = 5000; // status, node load (pings do not bump the revision)
  const RECENT_MOVES_MS = 60000; // finished moves stay listed this long
  const MAX_ROWS = 200; // rows per table; the heat map shows every node
  const MAX_EVENTS = 500;
  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
  const STATE_COLORS = {
    joining: '#8e6cc0', alive: '#2e9d5b', suspect: '#e0a100', draining: '#2f7fd8',
    dead: '#c0392b', left: '#9aa0a6',
  };
  const STATE_ORDER = ['joining', 'alive', 'suspect', 'draining', 'dead', 'left'];

  // ---- small helpers ------------------------------------------------------------------------
  const $ = (sel, root = document) => root.querySelector(sel);
  function h(tag, props, ...kids) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v == null || v === false) continue;
        if (k === 'class') e.className = v;
        else if (k === 'text') e.textContent = v;
        else if (k === 'dataset') Object.assign(e.dataset, v);
        else if (k === 'style') e.style.cssText = v; // CSSOM: allowed under a strict CSP
        else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of kids.flat(Infinity)) {
      if (c == null || c === false) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const enc = encodeURIComponent;
  const fmtNum = (x) => (typeof x === 'number' && !Number.isInteger(x) ? x.toFixed(x < 10 ? 2 : 1) : String(x));
  function fmtAge(ms) {
    if (ms < 1000) return ms + ' ms';
    const s = ms / 1000;
    if (s < 60) return s.toFixed(1) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' m ' + Math.floor(s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' m';
  }
  const fmtTime = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });
  const stateBadge = (st) => h('span', { class: 'state', dataset: { state: st || 'unknown' }, text: st || '?' });

  // JSON with 64-bit integers kept exact (revisions, generations) where the browser can.
  function parseJSON(text) {
    if (!text || !text.trim()) return null;
    if (text.length > 4e6) return JSON.parse(text); // big state bodies: speed first
    return JSON.parse(text, (k, v, ctx) =>
      typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v) && ctx && typeof ctx.source === 'string'
        ? BigInt(ctx.source) : v);
  }
  function toBig(x) {
    try { return x == null || x === '' ? null : BigInt(x); } catch { return null; }
  }

  // ---- the API ------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, code, message, method, path) {
      super(message);
      Object.assign(this, { status, code, method, path });
    }
  }
  let secret = sessionStorage.getItem(SECRET_KEY) || '';
  let secretAsk = null; // one prompt shared by every request that got 401
  let secretDeclined = false;

  function askSecret(refused) {
    if (secretAsk) return secretAsk;
    const d = $('#secret-dialog');
    const input = $('#secret-input');
    $('#secret-title').textContent = refused ? 'The secret was refused: try again'
      : 'This coordinator requires a secret';
    input.value = '';
    d.returnValue = '';
    secretAsk = new Promise((resolve) => {
      d.addEventListener('close', () => {
        secretAsk = null;
        if (d.returnValue === 'ok' && input.value) {
          secret = input.value;
          sessionStorage.setItem(SECRET_KEY, secret);
          secretDeclined = false;
          resolve(secret);
        } else {
          secretDeclined = true;
          resolve(null);
        }
      }, { once: true });
    });
    d.showModal();
    input.focus();
    return secretAsk;
  }

  async function api(method, path, body, opts = {}) {
    let refused = false;
    for (;;) {
      const headers = {};
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      if (secret) headers.Authorization = 'Bearer ' + secret;
      let res;
      try {
        res = await fetch(API + path, {
          method, headers, cache: 'no-store', signal: opts.signal,
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (e) {
        if (e.name === 'AbortError') throw e;
        throw new ApiError(0, 'ENETWORK', 'the coordinator did not answer (' + e.message + ')', method, path);
      }
      const text = await res.text().catch(() => '');
      if (res.status === 401 && !secretDeclined) {
        const got = await askSecret(refused || !!secret);
        refused = true;
        if (got !== null) continue;
      }
      let data = null;
      try {
        data = parseJSON(text);
      } catch {
        if (res.ok) throw new ApiError(res.status, 'EPROTO', 'the reply is not JSON', method, path);
      }
      if (!res.ok) {
        const code = (data && data.code) || 'HTTP ' + res.status;
        const msg = (data && data.message) || text.trim().slice(0, 300) || res.statusText;
        if (res.status === 401) secretDeclined = true;
        throw new ApiError(res.status, code, msg, method, path);
      }
      const rev = toBig(res.headers.get('X-Shardz-Revision')) ?? (data && data.revision != null ? toBig(data.revision) : null);
      return { status: res.status, data, revision: rev };
    }
  }

  // ---- messages -----------------------------------------------------------------------------
  function showError(err, context) {
    const box = $('#errors');
    const code = err && err.code ? err.code : 'ERROR';
    const what = context || (err && err.method ? err.method + ' ' + err.path : '');
    const status = err && err.status ? ' (' + err.status + ')' : '';
    const div = h('div', { class: 'error', dataset: { code } },
      h('strong', { text: code + status }),
      h('span', { class: 'msg', text: ' ' + (err && err.message ? err.message : String(err)) }),
      what ? h('span', { class: 'ctx', text: ' — ' + what }) : null,
      code === 'EPROTO' && err.status === 401
        ? h('button', { type: 'button', text: 'Enter secret', onclick: () => { div.remove(); secretDeclined = false; askSecret(false).then((s) => s && restart()); } })
        : null,
      h('button', { type: 'button', class: 'close', 'aria-label': 'dismiss', text: '×', onclick: () => div.remove() }));
    box.prepend(div);
    while (box.children.length > 5) box.lastChild.remove();
    if (!(err instanceof ApiError)) console.error(err);
  }
  function toast(text) {
    const t = h('div', { class: 'toast', text });
    $('#toasts').append(t);
    setTimeout(() => t.remove(), 6000);
  }

  // ---- dialogs ------------------------------------------------------------------------------
  function confirmDialog({ title, body, ok, danger, disabled }) {
    const d = $('#confirm');
    $('#confirm-title').textContent = title;
    $('#confirm-body').replaceChildren(...[body].flat().filter(Boolean));
    const okBtn = $('#confirm-ok');
    okBtn.textContent = ok;
    okBtn.disabled = !!disabled;
    okBtn.classList.toggle('danger', !!danger);
    d.returnValue = '';
    d.showModal();
    (disabled ? $('#confirm-cancel') : okBtn).focus();
    return new Promise((resolve) => d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true }));
  }

  // ---- state --------------------------------------------------------------------------------
  const S = {
    namespaces: [],
    ns: null,
    gen: 0, // bumped on every namespace switch: stale loops and replies are dropped
    abort: null,
    rev: null, // BigInt
    summary: null,
    stateNodes: [],
    counts: new Map(),
    partitionCount: 0,
    details: new Map(), // id -> node from GET .../nodes (capacity, load, address)
    detailsAt: 0,
    detailsMs: 0, // how long the last GET .../nodes took
    moves: [],
    queued: [],
    movesAt: 0,
    events: [],
    eventsNext: null,
    eventsAvailable: true,
    status: null,
    selected: null,
    partShown: null,
    sortKey: 'id',
    sortDir: 1,
    filter: '',
    heatMode: 'replicas',
    rows: [], // merged node rows, heat map order
  };
  const nsPath = (rest) => '/v1/namespaces/' + enc(S.ns) + rest;
  const strict = () => S.summary && S.summary.consistency === 'strict';
  const dims = () => (S.summary && Array.isArray(S.summary.dimensions) ? S.summary.dimensions : []);

  function applyState(st, rev) {
    S.rev = rev ?? toBig(st.revision);
    S.stateNodes = Array.isArray(st.nodes) ? st.nodes : [];
    const counts = new Map();
    const parts = Array.isArray(st.partitions) ? st.partitions : [];
    for (const p of parts) {
      for (const r of p.replicas || []) {
        counts.set(r.node, (counts.get(r.node) || 0) + 1);
        if (r.moving_to && r.moving_to !== r.node) counts.set(r.moving_to, (counts.get(r.moving_to) || 0) + 1);
      }
    }
    S.counts = counts;
    S.partitionCount = parts.length;
    document.body.dataset.revision = String(S.rev);
  }

  function mergedRows() {
    const rows = S.stateNodes.map((n) => {
      const d = S.details.get(n.id) || {};
      return {
        id: n.id, state: n.state || d.state, zone: n.zone ?? d.zone ?? '', address: n.address || d.address || '',
        replicas: S.counts.get(n.id) || 0, capacity: d.capacity || {}, load: d.load || null,
        drained: d.drained, leaving: d.leaving, drainReason: d.drain_reason || '',
      };
    });
    rows.sort((a, b) => collator.compare(a.zone, b.zone) || collator.compare(a.id, b.id));
    return rows;
  }

  // ---- loading ------------------------------------------------------------------------------
  async function loadNamespaces() {
    const r = await api('GET', '/v1/namespaces');
    const list = (r.data && r.data.namespaces) || [];
    S.namespaces = list.map((n) => n.name).sort(collator.compare);
    const sel = $('#ns-select');
    const cur = sel.value;
    sel.replaceChildren(...S.namespaces.map((n) => h('option', { value: n, text: n })));
    if (S.namespaces.includes(cur)) sel.value = cur;
    return S.namespaces;
  }

  function wantedNamespace() {
    const m = /(?:^|[#&])ns=([^&]+)/.exec(location.hash);
    const want = m ? decodeURIComponent(m[1]) : null;
    if (want && S.namespaces.includes(want)) return want;
    if (S.ns && S.namespaces.includes(S.ns)) return S.ns;
    return S.namespaces[0] || null;
  }

  async function start() {
    try {
      await loadNamespaces();
    } catch (e) {
      setLive('error', e.message);
      showError(e, 'listing namespaces');
      return;
    }
    const ns = wantedNamespace();
    const empty = $('#empty');
    if (!ns) {
      empty.hidden = false;
      empty.textContent = 'No namespaces yet: create one with POST /v1/namespaces (docs/PROTOCOL.md, section 3) or shardzctl namespace create.';
      setLive('idle', 'no namespace');
      return;
    }
    empty.hidden = true;
    if (ns !== S.ns || !S.abort) selectNamespace(ns);
  }

  // After the secret was given late: reload everything (the loops stopped at the 401).
  function restart() {
    if (S.abort) S.abort.abort();
    S.abort = null;
    S.gen++;
    loadStatus();
    start();
  }

  async function selectNamespace(ns) {
    if (S.abort) S.abort.abort();
    const gen = ++S.gen;
    const ctl = new AbortController();
    Object.assign(S, {
      ns, abort: ctl, rev: null, summary: null, stateNodes: [], counts: new Map(), details: new Map(),
      detailsAt: 0, detailsMs: 0, moves: [], events: [], eventsNext: null, eventsAvailable: true,
      selected: null, partShown: null, rows: [],
    });
    $('#ns-select').value = ns;
    document.title = ns + ' · shardz';
    history.replaceState(null, '', '#ns=' + enc(ns));
    $('#node-detail').hidden = true;
    $('#partition-body').replaceChildren('Look up a partition to see its replicas and move one.');
    render();
    setLive('connecting');
    for (let backoff = 500; gen === S.gen; backoff = Math.min(backoff * 2, 10000)) {
      try {
        const r = await api('GET', nsPath('/state'), undefined, { signal: ctl.signal });
        if (gen !== S.gen) return;
        applyState(r.data, r.revision);
        await refresh(gen, true);
        break;
      } catch (e) {
        if (gen !== S.gen || e.name === 'AbortError') return;
        setLive('error', e.message);
        if (e.status === 404 || e.status === 401) {
          showError(e, 'loading namespace ' + ns);
          return;
        }
        await sleep(backoff);
      }
    }
    watchLoop(gen, ctl.signal);
  }

  // The live loop: long-poll the watch with the last revision seen; on a change take the state
  // it returns and refresh what the state does not carry (moves, events, capacities).
  async function watchLoop(gen, signal) {
    let backoff = 500;
    while (gen === S.gen) {
      const t0 = performance.now();
      try {
        setLive('live');
        const r = await api('GET', nsPath('/watch?revision=' + S.rev + '&timeout_ms=' + WATCH_TIMEOUT_MS), undefined, { signal });
        if (gen !== S.gen) return;
        backoff = 500;
        if (r.data && !r.data.unchanged) {
          applyState(r.data, r.revision);
          await refresh(gen, false);
          const wait = MIN_WATCH_GAP_MS - (performance.now() - t0);
          if (wait > 0) await sleep(wait);
        }
      } catch (e) {
        if (gen !== S.gen || e.name === 'AbortError') return;
        if (e.status === 404) { // the namespace was deleted
          showError(e, 'watching ' + S.ns);
          S.abort = null;
          start();
          return;
        }
        setLive('reconnecting', e.message);
        if (e.status === 401) return; // the error offers to enter the secret
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 10000);
      }
    }
  }

  async function refresh(gen, first) {
    const jobs = [
      api('GET', nsPath('')).then((r) => { S.summary = r.data; }),
      loadMoves(),
      loadEvents(first),
    ];
    // Capacities and flags: the whole list when due (GET .../nodes costs the coordinator time
    // in proportion to nodes x partitions, so it is re-read less often when it was slow), else
    // only the nodes whose state changed.
    const changed = S.stateNodes.filter((n) => { const d = S.details.get(n.id); return !d || d.state !== n.state; });
    if (first || detailsDue() || changed.length > 20) jobs.push(loadDetails());
    else for (const n of changed) jobs.push(loadNodeDetails(n.id));
    if (S.selected) jobs.push(loadNodeDetail(S.selected));
    if (S.partShown) jobs.push(loadPartition(S.partShown, null, true));
    const results = await Promise.allSettled(jobs);
    if (gen !== S.gen) return;
    for (const r of results) if (r.status === 'rejected' && r.reason && r.reason.name !== 'AbortError') showError(r.reason);
    render();
  }

  const detailsDue = () => Date.now() - S.detailsAt > Math.max(PERIODIC_MS, 50 * S.detailsMs);

  async function loadDetails() {
    const t0 = performance.now();
    const r = await api('GET', nsPath('/nodes'));
    const m = new Map();
    for (const n of (r.data && r.data.nodes) || []) m.set(n.id, n);
    S.details = m;
    S.detailsAt = Date.now();
    S.detailsMs = performance.now() - t0;
  }

  async function loadNodeDetails(id) {
    try {
      const r = await api('GET', nsPath('/nodes/' + enc(id)));
      const n = r.data || {};
      delete n.partitions;
      S.details.set(id, n);
    } catch (e) {
      if (e.status !== 404) throw e; // gone meanwhile
    }
  }

  async function loadMoves() {
    const r = await api('GET', nsPath('/moves'));
    S.moves = (r.data && r.data.moves) || [];
    S.queued = (r.data && r.data.queued) || []; // planned moves the drain gate holds back
    S.movesAt = Date.now();
  }

  async function loadEvents(first) {
    if (!S.eventsAvailable) return;
    try {
      let since = S.eventsNext;
      for (let i = 0; i < 20; i++) {
        const q = since == null ? '?limit=1000' : '?since=' + since + '&limit=1000';
        const r = await api('GET', nsPath('/events' + q));
        const got = (r.data && r.data.events) || [];
        for (const e of got) e._seen = Date.now();
        S.events.push(...got);
        if (S.events.length > MAX_EVENTS) S.events.splice(0, S.events.length - MAX_EVENTS);
        if (r.data && r.data.next != null) since = r.data.next;
        S.eventsNext = since;
        if (got.length < 1000) break;
      }
    } catch (e) {
      if (e.status === 404 && /no such route/.test(e.message)) {
        S.eventsAvailable = false; // an older coordinator without the operator API
        return;
      }
      throw e;
    }
  }

  async function loadStatus() {
    try {
      const r = await api('GET', '/v1/status');
      S.status = r.data;
      S.statusAt = Date.now();
    } catch (e) {
      S.status = { error: e.code + ': ' + e.message };
    }
    renderStatus();
  }

  // ---- rendering ----------------------------------------------------------------------------
  function setLive(state, detail) {
    const e = $('#live');
    e.dataset.state = state;
    const rev = S.rev != null ? ' · revision ' + S.rev : '';
    const txt = {
      live: 'live' + rev, connecting: 'connecting…', reconnecting: 'reconnecting…',
      error: 'not connected', idle: 'idle',
    }[state] || state;
    e.textContent = txt;
    e.title = detail ? String(detail) : 'live updates from the coordinator\'s watch';
  }

  function render() {
    S.rows = mergedRows();
    renderSummary();
    renderHeat();
    renderNodes();
    renderMoves();
    renderEvents();
    if ($('#live').dataset.state === 'live') setLive('live');
    const hash = S.summary && S.summary.sharder === 'hash';
    $('#key-form').hidden = !hash;
    syncHeatModes();
  }

  function renderStatus() {
    const st = S.status || {};
    const dl = $('#status');
    const items = [];
    const add = (k, v, cls) => items.push(h('div', { class: cls || null, dataset: { key: k } }, h('dt', { text: k }), h('dd', { text: v })));
    if (st.error) add('status', st.error, 'bad');
    if (st.role) add('role', st.role + (st.id ? ' (' + st.id + ')' : ''), st.role === 'leader' && st.acting !== false ? 'good' : (st.role === 'follower' ? null : 'warn'));
    if (st.leader === null && st.shared_store) add('leader', 'none: an election is under way', 'bad');
    if (st.leader != null) add('leader', typeof st.leader === 'object' ? String(st.leader.id) + ' at ' + String(st.leader.address) : String(st.leader));
    if (Array.isArray(st.coordinators)) add('coordinators', st.coordinators.map((c) => String(c.id) + ' (' + String(c.role) + ')').join(', '));
    if (st.cache_stale) add('cache', 'stale: the store cannot be reached', 'bad');
    if (st.store) add('store', String(st.store));
    if (st.fsync) add('fsync', String(st.fsync), st.fsync === 'full' ? null : 'warn');
    if (st.store_revision != null) add('store rev', String(st.store_revision));
    if (st.uptime_ms != null) add('uptime', fmtAge(Math.floor((Number(st.uptime_ms) + Date.now() - (S.statusAt || Date.now())) / 1000) * 1000));
    if (st.version) add('version', String(st.version));
    const known = new Set(['role', 'leader', 'store', 'fsync', 'store_revision', 'uptime_ms', 'version', 'namespaces', 'listen', 'error', 'id', 'acting', 'coordinators', 'cache_stale', 'shared_store', 'role_since_ms', 'advertise', 'lease_fresh']);
    for (const [k, v] of Object.entries(st)) {
      if (known.has(k) || v == null) continue;
      add(k.replace(/_/g, ' '), typeof v === 'object' ? JSON.stringify(v) : String(v));
    }
    dl.replaceChildren(...items);
  }

  function renderSummary() {
    const box = $('#summary');
    if (!S.ns) { box.replaceChildren(); return; }
    const sm = S.summary || {};
    const byState = {};
    for (const n of S.stateNodes) byState[n.state] = (byState[n.state] || 0) + 1;
    const states = STATE_ORDER.filter((s) => byState[s]).map((s) =>
      h('span', { class: 'state count', dataset: { state: s }, text: byState[s] + ' ' + s }));
    const card = (label, value, cls, key) => h('div', { class: 'card ' + (cls || ''), dataset: { key } },
      h('div', { class: 'label', text: label }), h('div', { class: 'value' }, value));
    const missing = sm.missing ?? 0;
    box.replaceChildren(
      card('nodes', [String(S.stateNodes.length), ' ', ...states], '', 'nodes'),
      card('partitions', String(sm.partitions ?? S.partitionCount), '', 'partitions'),
      card('replicas each', String(sm.replicas ?? '?'), '', 'replicas'),
      card('missing replicas', String(missing), missing > 0 ? 'bad' : 'good', 'missing'),
      card('moves in flight', String(S.moves.length), S.moves.length ? 'busy' : '', 'moves'),
      card('sharder', (sm.sharder || '?') + ' · ' + (sm.consistency || '?'), '', 'sharder'),
      card('revision', String(S.rev ?? '?'), '', 'revision'));
  }

  // Heat map: one cell per node on a canvas (no DOM per node), colored by replicas against the
  // mean, by load against capacity, or by state; hover tells the details, click selects.
  const heat = { cols: 1, size: 10, gap: 1, rows: [], groups: [], mean: 0, meanLoad: 0, dim: null };

  function syncHeatModes() {
    const sel = $('#heat-mode');
    const want = ['replicas', ...dims().map((d) => 'load:' + d), 'state'];
    const have = [...sel.options].map((o) => o.value);
    if (want.join('|') === have.join('|')) return;
    const cur = sel.value;
    sel.replaceChildren(...want.map((v) => h('option', {
      value: v, text: v === 'replicas' ? 'replicas vs mean' : v === 'state' ? 'state' : 'load vs capacity: ' + v.slice(5),
    })));
    sel.value = want.includes(cur) ? cur : 'replicas';
    S.heatMode = sel.value;
  }

  const holding = (st) => st === 'alive' || st === 'joining' || st === 'suspect';
  function hueColor(ratio) { // 0 -> blue, 1 (the mean) -> green, >= 2 -> red
    const r = Math.max(0, Math.min(2, ratio));
    const hue = r <= 1 ? 215 - 95 * r : 120 - 120 * (r - 1);
    return 'hsl(' + hue.toFixed(0) + ',62%,' + (r <= 1 ? 52 : 50) + '%)';
  }
  function nodeLoad(row, dim) {
    const l = row.load && row.load[dim];
    return typeof l === 'number' ? l : null;
  }
  function cellColor(row) {
    if (S.heatMode === 'state') return STATE_COLORS[row.state] || '#666';
    if (row.state === 'dead' || row.state === 'left') return '#b9bec4';
    if (S.heatMode.startsWith('load:')) {
      const dim = S.heatMode.slice(5);
      const l = nodeLoad(row, dim);
      const cap = row.capacity && typeof row.capacity[dim] === 'number' ? row.capacity[dim] : null;
      if (l != null && cap) {
        const u = Math.max(0, Math.min(1, l / cap));
        return 'hsl(' + (120 - 120 * u).toFixed(0) + ',65%,' + (48 + 8 * (1 - u)).toFixed(0) + '%)';
      }
      if (l != null && heat.meanLoad > 0) return hueColor(l / heat.meanLoad);
    }
    return heat.mean > 0 ? hueColor(row.replicas / heat.mean) : hueColor(1);
  }
  function matchesFilter(row) {
    if (!S.filter) return true;
    const f = S.filter.toLowerCase();
    return row.id.toLowerCase().includes(f) || (row.zone || '').toLowerCase().includes(f) || row.state === f;
  }

  function renderHeat() {
    const canvas = $('#heatmap');
    const rows = S.rows;
    heat.rows = rows;
    const counted = rows.filter((r) => holding(r.state));
    heat.mean = counted.length ? counted.reduce((a, r) => a + r.replicas, 0) / counted.length : 0;
    const dim = S.heatMode.startsWith('load:') ? S.heatMode.slice(5) : null;
    const loads = dim ? counted.map((r) => nodeLoad(r, dim)).filter((x) => x != null) : [];
    heat.meanLoad = loads.length ? loads.reduce((a, b) => a + b, 0) / loads.length : 0;
    heat.dim = dim;
    const wrap = canvas.parentElement;
    const W = Math.max(200, wrap.clientWidth);
    const n = Math.max(rows.length, 1);
    heat.gap = n > 400 ? 1 : 2;
    let s = Math.floor(Math.sqrt((W * 320) / n)) - heat.gap;
    s = Math.max(5, Math.min(s, 84));
    heat.size = s;
    heat.cols = Math.max(1, Math.floor((W + heat.gap) / (s + heat.gap)));
    const step = s + heat.gap;
    // One block per zone (rows are sorted by zone), each under a label with its totals, when
    // there are a few zones; else a single block.
    const groups = [];
    for (let i = 0; i < rows.length; i++) {
      const g = groups[groups.length - 1];
      if (g && g.zone === rows[i].zone) g.count++;
      else groups.push({ zone: rows[i].zone, start: i, count: 1 });
    }
    const labelled = groups.length > 1 && groups.length <= 32;
    if (!labelled) groups.splice(0, groups.length, { zone: null, start: 0, count: rows.length });
    const LH = labelled ? 17 : 0;
    let Hpx = 0;
    for (const g of groups) {
      g.label = Hpx;
      g.y0 = Hpx + LH;
      g.nrows = Math.ceil(g.count / heat.cols) || 1;
      Hpx = g.y0 + g.nrows * step + (labelled ? 6 : 0);
    }
    heat.groups = groups;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(W * dpr);
    canvas.height = Math.round(Hpx * dpr);
    canvas.style.width = W + 'px';
    canvas.style.height = Hpx + 'px';
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, Hpx);
    const labels = s >= 44;
    ctx.textBaseline = 'top';
    for (const g of groups) {
      if (labelled) {
        let reps = 0;
        let alive = 0;
        for (let i = g.start; i < g.start + g.count; i++) { reps += rows[i].replicas; alive += rows[i].state === 'alive' ? 1 : 0; }
        ctx.globalAlpha = 1;
        ctx.fillStyle = '#4a545e';
        ctx.font = '600 12px system-ui, sans-serif';
        ctx.fillText('zone ' + (g.zone || '(none)') + ' · ' + g.count + ' nodes, ' + alive + ' alive · ' + reps + ' replicas', 0, g.label + 2);
      }
      for (let k = 0; k < g.count; k++) {
        const i = g.start + k;
        const row = rows[i];
        const x = (k % heat.cols) * step;
        const y = g.y0 + Math.floor(k / heat.cols) * step;
        ctx.globalAlpha = matchesFilter(row) ? 1 : 0.18;
        ctx.fillStyle = cellColor(row);
        ctx.fillRect(x, y, s, s);
        if (S.heatMode !== 'state' && row.state !== 'alive' && s >= 8) { // state marker in a corner
          const m = Math.max(4, Math.round(s / 3));
          ctx.fillStyle = STATE_COLORS[row.state] || '#666';
          ctx.beginPath();
          ctx.moveTo(x, y); ctx.lineTo(x + m, y); ctx.lineTo(x, y + m); ctx.closePath();
          ctx.fill();
        }
        if (labels) {
          ctx.fillStyle = '#fff';
          ctx.font = '600 11px system-ui, sans-serif';
          const id = row.id.length > 9 ? row.id.slice(0, 8) + '…' : row.id;
          ctx.fillText(id, x + 5, y + 5);
          ctx.font = '11px system-ui, sans-serif';
          ctx.fillText(String(row.replicas), x + 5, y + 20);
          if (s >= 60) ctx.fillText(row.state, x + 5, y + s - 16);
        }
        if (row.id === S.selected) {
          ctx.globalAlpha = 1;
          ctx.strokeStyle = '#111';
          ctx.lineWidth = 2;
          ctx.strokeRect(x + 1, y + 1, s - 2, s - 2);
        }
      }
    }
    ctx.globalAlpha = 1;
    renderLegend();
  }

  function renderLegend() {
    const box = $('#heat-legend');
    const items = [];
    if (S.heatMode === 'state') {
      const byState = {};
      for (const r of heat.rows) byState[r.state] = (byState[r.state] || 0) + 1;
      for (const s of STATE_ORDER) if (byState[s]) items.push(h('span', { class: 'sw' }, h('i', { style: 'background:' + STATE_COLORS[s] }), s + ' ' + byState[s]));
    } else if (heat.dim && heat.rows.some((r) => nodeLoad(r, heat.dim) != null)) {
      items.push(h('span', { class: 'ramp load' }), h('span', { text: heat.dim + ': 0 → capacity (or the mean when no capacity is set)' }));
    } else {
      if (heat.dim) items.push(h('span', { class: 'note', text: 'no load reported in ' + heat.dim + ': colored by replicas. ' }));
      items.push(h('span', { text: '0' }), h('span', { class: 'ramp replicas' }),
        h('span', { text: '2× mean · mean ' + heat.mean.toFixed(1) + ' replicas per node' }));
      items.push(h('span', { class: 'note', text: ' · corner: state other than alive · grey: dead or left' }));
    }
    box.replaceChildren(...items);
  }

  function heatIndexAt(ev) {
    const rect = ev.target.getBoundingClientRect();
    const x = ev.clientX - rect.left;
    const y = ev.clientY - rect.top;
    const step = heat.size + heat.gap;
    const c = Math.floor(x / step);
    if (c >= heat.cols || x % step > heat.size) return -1;
    for (const g of heat.groups || []) {
      if (y < g.y0 || y >= g.y0 + g.nrows * step) continue;
      if ((y - g.y0) % step > heat.size) return -1;
      const k = Math.floor((y - g.y0) / step) * heat.cols + c;
      return k < g.count ? g.start + k : -1;
    }
    return -1;
  }

  function onHeatMove(ev) {
    const tip = $('#heat-tip');
    const i = heatIndexAt(ev);
    if (i < 0) { tip.hidden = true; ev.target.style.cursor = ''; return; }
    ev.target.style.cursor = 'pointer';
    const row = heat.rows[i];
    const lines = [
      h('b', { text: row.id }), ' ', stateBadge(row.state),
      h('div', { text: 'zone ' + (row.zone || '—') + ' · ' + row.address }),
      h('div', { text: row.replicas + ' replicas' + (heat.mean > 0 ? ' (' + (row.replicas / heat.mean).toFixed(2) + '× mean)' : '') }),
    ];
    for (const d of dims()) {
      const l = nodeLoad(row, d);
      const c = row.capacity[d];
      if (l != null || c != null) lines.push(h('div', { text: d + ': ' + (l != null ? fmtNum(l) : '—') + ' / ' + (c != null ? fmtNum(c) : '∞') }));
    }
    tip.replaceChildren(...lines);
    tip.hidden = false;
    const wrap = ev.target.parentElement.getBoundingClientRect();
    let left = ev.clientX - wrap.left + 14;
    if (left + 260 > wrap.width) left = Math.max(0, ev.clientX - wrap.left - 270);
    tip.style.left = left + 'px';
    tip.style.top = ev.clientY - wrap.top + 14 + 'px';
  }

  function sortedFilteredRows() {
    const rows = S.rows.filter(matchesFilter);
    const k = S.sortKey;
    const dir = S.sortDir;
    rows.sort((a, b) => {
      let c;
      if (k === 'replicas') c = a.replicas - b.replicas;
      else if (k === 'state') c = STATE_ORDER.indexOf(a.state) - STATE_ORDER.indexOf(b.state);
      else c = collator.compare(String(a[k] ?? ''), String(b[k] ?? ''));
      return dir * (c || collator.compare(a.id, b.id));
    });
    return rows;
  }

  function loadCell(row) {
    const out = [];
    for (const d of dims()) {
      const l = nodeLoad(row, d);
      const c = typeof row.capacity[d] === 'number' ? row.capacity[d] : null;
      if (l == null && c == null) continue;
      const pct = l != null && c ? Math.min(100, (100 * l) / c) : null;
      out.push(h('div', { class: 'dim', dataset: { dim: d } },
        h('span', { class: 'dname', text: d }),
        pct != null ? h('span', { class: 'meter' }, h('i', { style: 'width:' + pct.toFixed(1) + '%', class: pct > 90 ? 'hot' : null })) : null,
        h('span', { class: 'dval', text: (l != null ? fmtNum(l) : '—') + ' / ' + (c != null ? fmtNum(c) : '∞') })));
    }
    return out.length ? out : h('span', { class: 'muted', text: '—' });
  }

  function renderNodes() {
    const tbody = $('#nodes-table tbody');
    const rows = sortedFilteredRows();
    const max = Math.max(1, ...S.rows.map((r) => r.replicas));
    const shown = rows.slice(0, MAX_ROWS);
    const frag = document.createDocumentFragment();
    for (const row of shown) {
      const acts = [];
      if (row.state === 'draining') {
        if (!(row.leaving && !row.drained)) acts.push(h('button', { type: 'button', class: 'act', dataset: { action: 'undrain', node: row.id }, text: 'Undrain' }));
      }
      else if (row.state !== 'left' && row.state !== 'dead') acts.push(h('button', { type: 'button', class: 'act', dataset: { action: 'drain', node: row.id }, text: 'Drain' }));
      if (row.state !== 'left') acts.push(h('button', { type: 'button', class: 'act', dataset: { action: 'stoppable', node: row.id }, text: 'Stop?' }));
      frag.append(h('tr', { dataset: { node: row.id, state: row.state }, class: row.id === S.selected ? 'selected' : null },
        h('td', null, h('a', { href: '#', class: 'node-link', dataset: { node: row.id }, text: row.id })),
        h('td', { class: 'state-cell' }, stateBadge(row.state),
          row.state === 'draining' && (row.drained || row.leaving) ? h('span', { class: 'why', text: row.drained ? 'by an operator' + (row.drainReason ? ': ' + row.drainReason : '') : 'leaving' }) : null),
        h('td', { text: row.zone || '—' }),
        h('td', { class: 'num replicas' }, h('span', { class: 'bar', style: 'width:' + ((60 * row.replicas) / max).toFixed(0) + 'px' }), String(row.replicas)),
        h('td', { class: 'load' }, loadCell(row)),
        h('td', { class: 'addr', text: row.address }),
        h('td', null, acts)));
    }
    tbody.replaceChildren(frag);
    $('#nodes-count').textContent = S.rows.length === 0 ? 'No nodes registered yet.'
      : rows.length > MAX_ROWS ? 'Showing ' + MAX_ROWS + ' of ' + rows.length + ' matching nodes (' + S.rows.length + ' in all): refine the filter or use the heat map.'
        : rows.length + ' of ' + S.rows.length + ' nodes';
    for (const th of document.querySelectorAll('#nodes-table th[data-sort]')) {
      th.classList.toggle('sorted', th.dataset.sort === S.sortKey);
      th.dataset.dir = S.sortDir > 0 ? 'asc' : 'desc';
    }
  }

  function moveSteps(m) {
    let steps;
    let cur;
    if (strict()) {
      steps = m.from ? ['dropping', 'adding', 'switching'] : ['adding', 'switching'];
      cur = m.to_state === 'pending' ? 0 : m.to_state === 'adding' ? steps.indexOf('adding') : steps.length - 1;
    } else {
      steps = m.from ? ['adding', 'switching', 'dropping'] : ['adding', 'switching'];
      cur = m.to_state === 'adding' || m.to_state === 'pending' ? 0 : m.from_state === 'dropping' ? 2 : 1;
    }
    if (m._done) cur = steps.length;
    return h('ol', { class: 'steps', title: 'from: ' + (m.from_state || '—') + ', to: ' + (m.to_state || '—') },
      steps.map((s, i) => h('li', { class: i < cur ? 'done' : i === cur ? 'current' : null, 'aria-current': i === cur ? 'step' : null, text: s })));
  }

  // Moves finished in the last minute, from the event log ("move" gives from/to, "move-done"
  // says when), so even a move quicker than a watch round trip is seen.
  function recentDone() {
    const now = Date.now();
    const inflight = new Set(S.moves.map((m) => m.partition + '#' + m.slot));
    const started = new Map();
    const out = [];
    for (const e of S.events) {
      const k = e.partition + '#' + e.slot;
      if (e.type === 'move') {
        started.set(k, e);
        continue;
      }
      if (e.type !== 'move-done') continue;
      const t = typeof e.time_ms === 'number' ? e.time_ms : e._seen;
      if (now - t > RECENT_MOVES_MS || inflight.has(k)) continue;
      const st = started.get(k) || {};
      out.push({
        partition: e.partition, slot: e.slot, from: st.from, to: e.node ?? st.to, reason: e.reason || st.reason,
        generation: st.generation, seconds: e.seconds, _done: true, _ago: now - t,
      });
    }
    return out.reverse().slice(0, MAX_ROWS);
  }

  function renderMoves() {
    const tbody = $('#moves-table tbody');
    const moves = [...S.moves].sort((a, b) => Number(b.age_ms) - Number(a.age_ms) || collator.compare(a.partition, b.partition));
    const done = recentDone();
    const frag = document.createDocumentFragment();
    for (const m of moves.slice(0, MAX_ROWS)) {
      frag.append(h('tr', { class: 'inflight', dataset: { partition: m.partition, slot: m.slot, reason: m.reason, to: m.to } },
        h('td', null, h('a', { href: '#', class: 'part-link', dataset: { partition: m.partition }, text: m.partition })),
        h('td', { class: 'num', text: String(m.slot) }),
        h('td', { class: 'fromto', text: (m.from || '—') + ' → ' + (m.to || '—') }),
        h('td', null, moveSteps(m)),
        h('td', null, h('span', { class: 'reason', text: m.reason || '' })),
        h('td', { class: 'num age', dataset: { age: m.age_ms }, text: fmtAge(Number(m.age_ms) || 0) }),
        h('td', { class: 'num', text: String(m.generation ?? '') }),
        h('td', null, h('button', { type: 'button', class: 'act small', dataset: { action: 'cancel', partition: m.partition, slot: m.slot }, text: 'Cancel' }))));
    }
    for (const m of done.slice(0, Math.max(0, MAX_ROWS - moves.length))) {
      frag.append(h('tr', { class: 'done', dataset: { partition: m.partition, slot: m.slot, reason: m.reason, to: m.to } },
        h('td', null, h('a', { href: '#', class: 'part-link', dataset: { partition: m.partition }, text: m.partition })),
        h('td', { class: 'num', text: String(m.slot ?? '') }),
        h('td', { class: 'fromto', text: (m.from || '—') + ' → ' + (m.to || '—') }),
        h('td', null, moveSteps(m)),
        h('td', null, h('span', { class: 'reason', text: m.reason || '' })),
        h('td', { class: 'num', text: 'done ' + fmtAge(m._ago) + ' ago' }),
        h('td', { class: 'num', text: String(m.generation ?? '') }),
        h('td')));
    }
    for (const q of S.queued.slice(0, Math.max(0, MAX_ROWS - moves.length))) {
      frag.append(h('tr', { class: 'queued', dataset: { partition: q.partition, slot: q.slot, reason: q.reason, to: q.to || '' } },
        h('td', null, h('a', { href: '#', class: 'part-link', dataset: { partition: q.partition }, text: q.partition })),
        h('td', { class: 'num', text: String(q.slot) }),
        h('td', { class: 'fromto', text: (q.from || '—') + ' → ' + (q.to || '—') }),
        h('td', null, h('span', { class: 'waiting', text: 'waiting: ' + ({ floor: 'availability floor', limit: 'moves in flight limit', frozen: 'namespace frozen' }[q.waiting] || q.waiting) })),
        h('td', null, h('span', { class: 'reason', text: q.reason || '' })),
        h('td', { class: 'num age', dataset: { age: q.age_ms }, text: fmtAge(Number(q.age_ms) || 0) }),
        h('td'), h('td')));
    }
    if (!moves.length && !done.length && !S.queued.length) frag.append(h('tr', { class: 'none' }, h('td', { colspan: 8, class: 'muted', text: 'No moves in flight.' })));
    tbody.replaceChildren(frag);
    const byReason = {};
    for (const m of S.moves) byReason[m.reason] = (byReason[m.reason] || 0) + 1;
    $('#moves-count').textContent = (S.moves.length
      ? S.moves.length + ' in flight (' + Object.entries(byReason).map(([r, c]) => r + ' ' + c).join(', ') + ')' + (S.moves.length > MAX_ROWS ? ', oldest ' + MAX_ROWS + ' shown' : '')
      : done.length ? 'none in flight; finished in the last minute below' : '') +
      (S.queued.length ? (S.moves.length || done.length ? '; ' : '') + S.queued.length + ' waiting at the drain gate' : '');
  }

  function describeEvent(e) {
    switch (e.type) {
      case 'move':
        return e.partition + ' slot ' + e.slot + ': ' + (e.from || '—') + ' → ' + (e.to || '—') + (e.generation != null ? ' (generation ' + e.generation + ')' : '');
      case 'move-done':
        return e.partition + ' slot ' + e.slot + ': done' + (e.node ? ', on ' + e.node : '') + (typeof e.seconds === 'number' ? ' after ' + fmtAge(Math.round(e.seconds * 1000)) : '');
      case 'node-state':
        return e.node + ': ' + (e.from || '—') + ' → ' + (e.to || '—');
      case 'node-registered':
        return e.node + (e.address ? ' at ' + e.address : '') + (e.zone ? ', zone ' + e.zone : '');
      case 'placed':
        return e.count + ' new replica' + (e.count === 1 ? '' : 's') + ' placed';
      case 'partitions-added':
      case 'partitions-removed': {
        const ids = e.ids || e.partitions || (e.partition != null ? [e.partition] : null);
        if (Array.isArray(ids)) return ids.length + ' partition' + (ids.length === 1 ? '' : 's') + ': ' + ids.slice(0, 8).join(', ') + (ids.length > 8 ? ', …' : '');
        return e.count != null ? e.count + ' partitions' : '';
      }
      default: {
        const rest = { ...e };
        for (const k of ['seq', 'time_ms', 'type', 'reason', '_seen']) delete rest[k];
        return JSON.stringify(rest);
      }
    }
  }

  function renderEvents() {
    const tbody = $('#events-table tbody');
    const frag = document.createDocumentFragment();
    const evs = S.events.slice(-MAX_ROWS).reverse();
    for (const e of evs) {
      frag.append(h('tr', { dataset: { type: e.type, reason: e.reason || null } },
        h('td', { class: 'time', text: typeof e.time_ms === 'number' ? fmtTime(e.time_ms) : '' }),
        h('td', null, h('span', { class: 'etype', dataset: { type: e.type }, text: e.type })),
        h('td', { text: describeEvent(e) }),
        h('td', null, e.reason ? h('span', { class: 'reason', text: e.reason }) : '')));
    }
    if (!evs.length) {
      frag.append(h('tr', { class: 'none' }, h('td', { colspan: 4, class: 'muted', text: S.eventsAvailable ? 'No events yet.' : 'This coordinator does not serve events.' })));
    }
    tbody.replaceChildren(frag);
    $('#events-count').textContent = S.events.length ? 'newest first, ' + Math.min(S.events.length, MAX_ROWS) + ' shown' : '';
  }

  // ---- node and partition details -------------------------------------------------------------
  async function loadNodeDetail(id) {
    const r = await api('GET', nsPath('/nodes/' + enc(id)));
    if (S.selected !== id) return;
    renderNodeDetail(r.data);
  }

  function renderNodeDetail(n) {
    const panel = $('#node-detail');
    panel.hidden = false;
    $('#node-detail-title').replaceChildren('Node ', h('span', { class: 'mono', text: n.id }), ' ', stateBadge(n.state));
    const parts = Array.isArray(n.partitions) ? n.partitions : [];
    const f = $('#part-filter').value.trim().toLowerCase();
    const shown = parts.filter((p) => !f || String(p.partition).toLowerCase().includes(f));
    shown.sort((a, b) => collator.compare(a.partition, b.partition) || a.slot - b.slot);
    const cap = Object.entries(n.capacity || {}).map(([k, v]) => k + ' ' + fmtNum(v)).join(', ');
    const load = n.load ? Object.entries(n.load).map(([k, v]) => k + ' ' + fmtNum(v)).join(', ') : '';
    const meta = h('p', { class: 'meta' },
      'zone ', h('b', { text: n.zone || '—' }), ' · address ', h('span', { class: 'mono', text: n.address || '' }),
      ' · ', h('b', { text: String(parts.length) }), ' replicas',
      cap ? [' · capacity ', h('b', { text: cap })] : null,
      load ? [' · load ', h('b', { text: load })] : null,
      n.leaving ? ' · leaving' : null);
    const rows = shown.slice(0, 500).map((p) => h('tr', { dataset: { partition: p.partition, slot: p.slot } },
      h('td', null, h('a', { href: '#', class: 'part-link', dataset: { partition: p.partition }, text: p.partition })),
      h('td', { class: 'num', text: String(p.slot) }),
      h('td', { text: p.role }),
      h('td', null, stateBadge(p.state)),
      h('td', { class: 'num', text: String(p.generation) }),
      h('td', null, p.state === 'serving'
        ? h('button', { type: 'button', class: 'act small', dataset: { action: 'move', partition: p.partition, slot: p.slot, from: n.id }, text: 'Move…' }) : null)));
    const table = h('table', { class: 'grid', id: 'node-parts' },
      h('thead', null, h('tr', null, ['partition', 'slot', 'role', 'state', 'generation', ''].map((t, i) => h('th', { class: i === 1 || i === 4 ? 'num' : null, text: t })))),
      h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: 6, class: 'muted', text: parts.length ? 'No partition matches.' : 'This node holds no replicas.' }))));
    const more = shown.length > 500 ? h('p', { class: 'muted', text: 'Showing 500 of ' + shown.length + ': filter to find others.' }) : null;
    $('#node-detail-body').replaceChildren(...[meta, h('div', { class: 'scroll' }, table), more].filter(Boolean));
  }

  function selectNode(id) {
    S.selected = id;
    renderHeat();
    renderNodes();
    loadNodeDetail(id).catch((e) => showError(e));
    $('#node-detail').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }

  async function loadPartition(pid, keyInfo, quiet) {
    try {
      const r = await api('GET', nsPath('/partitions/' + enc(pid)));
      const hist = await api('GET', nsPath('/partitions/' + enc(pid) + '/history'));
      S.partShown = pid;
      renderPartition(r.data, keyInfo, (hist.data && hist.data.history) || []);
    } catch (e) {
      if (quiet && e.status === 404) { S.partShown = null; $('#partition-body').replaceChildren('Partition ' + pid + ' is gone.'); return; }
      throw e;
    }
  }

  function renderPartition(p, keyInfo, history) {
    const reps = Array.isArray(p.replicas) ? p.replicas : [];
    const body = $('#partition-body');
    body.classList.remove('muted');
    const head = h('p', { class: 'meta' },
      keyInfo ? ['key ', h('b', { class: 'mono', text: keyInfo.key }), ' → slot ', h('b', { text: String(keyInfo.slot) }), ' → '] : null,
      'partition ', h('b', { class: 'mono', text: p.partition }), ' · generation ', h('b', { text: String(p.generation) }),
      ' · ', String(reps.length), ' replica', reps.length === 1 ? '' : 's');
    const rows = reps.map((r) => h('tr', { dataset: { slot: r.slot, node: r.node } },
      h('td', { class: 'num', text: String(r.slot) }),
      h('td', null, h('a', { href: '#', class: 'node-link', dataset: { node: r.node }, text: r.node }), r.moving_to ? ' → ' + r.moving_to : ''),
      h('td', { text: r.role }),
      h('td', null, stateBadge(r.state)),
      h('td', { class: 'num', text: String(r.generation ?? '') }),
      h('td', null, h('button', { type: 'button', class: 'act small', dataset: { action: 'move', partition: p.partition, slot: r.slot, from: r.node }, text: 'Move…' }))));
    body.replaceChildren(head, h('table', { class: 'grid', id: 'part-replicas' },
      h('thead', null, h('tr', null, ['slot', 'node', 'role', 'state', 'generation', ''].map((t, i) => h('th', { class: i === 0 || i === 4 ? 'num' : null, text: t })))),
      h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: 6, class: 'muted', text: 'No replica is placed.' })))),
      renderHistory(history || []));
  }

  // Why did it move: the partition's last moves, newest first (kept by the coordinator).
  function renderHistory(history) {
    const rows = [...history].reverse().map((m) => h('tr', { dataset: { reason: m.reason } },
      h('td', { text: new Date(Number(m.time_ms)).toISOString().replace('T', ' ').replace('Z', ' UTC') }),
      h('td', { class: 'num', text: String(m.slot) }),
      h('td', { class: 'fromto', text: (m.from || '—') + ' → ' + (m.to || '—') }),
      h('td', null, h('span', { class: 'reason', text: m.reason })),
      h('td', { class: 'num', text: String(m.generation) })));
    return h('div', { id: 'part-history' },
      h('h3', { text: 'Why did it move? (last ' + history.length + ' of at most 32 moves)' }),
      rows.length ? h('table', { class: 'grid' },
        h('thead', null, h('tr', null, ['when', 'slot', 'from → to', 'reason', 'generation'].map((t, i) => h('th', { class: i === 1 || i === 4 ? 'num' : null, text: t })))),
        h('tbody', null, rows))
        : h('p', { class: 'muted', text: 'It has not moved since it was placed.' }));
  }

  // May this node stop now? POST /v1/stoppable, across every namespace it serves.
  async function stoppable(id, button) {
    await act(button, async () => {
      const r = await api('POST', '/v1/stoppable', { nodes: [id] });
      const n = (r.data.nodes || [])[0] || {};
      const reasons = (n.reasons || []).map((x) => h('li', {
        text: x.rule === 'zone' ? 'zone ' + x.zone + ' (nodes stopping now are in ' + x.stopping_zone + ')'
          : 'partition ' + x.partition + ' of ' + x.namespace + ': ' + x.serving + ' serving, ' + x.left + ' left without it, floor ' + x.min_available,
      }));
      await confirmDialog({
        title: n.stoppable ? id + ' may stop now' : id + ' may not stop now',
        body: n.stoppable
          ? h('p', { id: 'stoppable-answer', dataset: { stoppable: 'yes' }, text: n.gone ? 'It is gone already (dead or left).' : 'Every partition it serves keeps its floor (min_available) without it, in every namespace.' })
          : [h('p', { id: 'stoppable-answer', dataset: { stoppable: 'no' }, text: 'Stopping it would take these below their floor (drain it first):' }), h('ul', { class: 'reasons' }, reasons)],
        ok: 'Close',
      });
    });
  }

  // ---- actions --------------------------------------------------------------------------------
  async function act(button, fn) {
    if (button) button.disabled = true;
    try {
      await fn();
    } catch (e) {
      if (e.name !== 'AbortError') showError(e);
    } finally {
      if (button) button.disabled = false;
    }
  }

  async function drain(id, button) {
    const row = S.rows.find((r) => r.id === id);
    const reason = h('input', { type: 'text', id: 'drain-reason', maxlength: 200, placeholder: 'why (optional): kernel upgrade, rack 7…' });
    const ok = await confirmDialog({
      title: 'Drain node ' + id + '?',
      body: [h('p', { text: 'Its ' + (row ? row.replicas : '') + ' replicas move to other nodes, make-before-break (reason drain), through the drain gate: no partition below its floor.' }),
        h('label', null, 'Reason ', reason),
        h('p', { class: 'muted', text: 'The node stays registered and keeps answering; Undrain brings it back.' })],
      ok: 'Drain ' + id, danger: true,
    });
    if (!ok) return;
    await act(button, async () => {
      await api('POST', nsPath('/nodes/' + enc(id) + '/drain'), reason.value ? { reason: reason.value } : {});
      toast('Draining ' + id + ': its replicas are moving away.');
    });
  }

  async function undrain(id, button) {
    const ok = await confirmDialog({
      title: 'Undrain node ' + id + '?',
      body: h('p', { text: id + ' goes back to alive and gets replicas again at the next rebalance.' }),
      ok: 'Undrain ' + id,
    });
    if (!ok) return;
    await act(button, async () => {
      await api('POST', nsPath('/nodes/' + enc(id) + '/undrain'), {});
      toast(id + ' is back: it takes replicas at the next rebalance.');
    });
  }

  async function movePartition(pid, slot, from, button) {
    let holders = new Set([from]);
    try {
      const r = await api('GET', nsPath('/partitions/' + enc(pid)));
      holders = new Set((r.data.replicas || []).flatMap((x) => [x.node, x.moving_to].filter(Boolean)));
    } catch (e) {
      showError(e);
      return;
    }
    const rows = S.rows.filter((r) => r.state === 'alive' && !holders.has(r.id))
      .sort((a, b) => a.replicas - b.replicas || collator.compare(a.id, b.id));
    const others = S.rows.filter((r) => !rows.includes(r) && r.id !== from);
    const select = h('select', { id: 'move-target', 'aria-label': 'target node' },
      rows.map((r) => h('option', { value: r.id, text: r.id + ' — zone ' + (r.zone || '—') + ', ' + r.replicas + ' replicas' })),
      others.length ? h('optgroup', { label: 'not eligible (the coordinator will refuse)' },
        others.map((r) => h('option', { value: r.id, text: r.id + ' — ' + r.state + (holders.has(r.id) ? ', holds it' : '') }))) : null);
    const ok = await confirmDialog({
      title: 'Move partition ' + pid + ', slot ' + slot + '?',
      body: [h('p', null, 'From ', h('b', { class: 'mono', text: from || '—' }), ' to:'), h('label', { class: 'block' }, select),
        h('p', { class: 'muted', text: 'Make-before-break, reason operator. The balancer may move it again at a later rebalance.' })],
      ok: 'Move', disabled: !rows.length && !others.length,
    });
    if (!ok) return;
    const to = select.value;
    await act(button, async () => {
      const r = await api('POST', nsPath('/partitions/' + enc(pid) + '/move'), { slot: Number(slot), to });
      const m = (r.data && (r.data.move || r.data)) || {};
      toast('Moving ' + pid + ' slot ' + slot + ' → ' + to + (m.reason ? ' (' + m.reason + ')' : ''));
    });
  }

  async function cancelMove(pid, slot, button) {
    const ok = await confirmDialog({
      title: 'Cancel the move of ' + pid + ', slot ' + slot + '?',
      body: h('p', { text: 'The slot goes back to the node still serving it.' }),
      ok: 'Cancel the move', danger: true,
    });
    if (!ok) return;
    await act(button, async () => {
      await api('DELETE', nsPath('/moves/' + enc(pid) + '/' + enc(slot)));
      toast('Move of ' + pid + ' slot ' + slot + ' cancelled.');
    });
  }

  async function planAndRebalance(button) {
    let plan;
    button.disabled = true;
    try {
      plan = (await api('GET', nsPath('/plan'))).data || {};
    } catch (e) {
      showError(e);
      return;
    } finally {
      button.disabled = false;
    }
    const moves = Array.isArray(plan.moves) ? plan.moves : [];
    const byReason = {};
    for (const m of moves) byReason[m.reason] = (byReason[m.reason] || 0) + 1;
    const table = moves.length ? h('div', { class: 'scroll short' }, h('table', { class: 'grid', id: 'plan-moves' },
      h('thead', null, h('tr', null, ['partition', 'slot', 'from → to', 'reason'].map((t) => h('th', { text: t })))),
      h('tbody', null, moves.slice(0, MAX_ROWS).map((m) => h('tr', null,
        h('td', { class: 'mono', text: m.partition }), h('td', { class: 'num', text: String(m.slot) }),
        h('td', { text: (m.from || '—') + ' → ' + (m.to || '—') }), h('td', null, h('span', { class: 'reason', text: m.reason || '' }))))))) : null;
    const summary = moves.length
      ? moves.length + ' move' + (moves.length === 1 ? '' : 's') + ' (' + Object.entries(byReason).map(([r, c]) => r + ' ' + c).join(', ') + ')'
      : 'The placement is balanced: no moves.';
    const ok = await confirmDialog({
      title: 'Rebalance ' + S.ns + '?',
      body: [h('p', { id: 'plan-summary' }, h('b', { text: summary }),
        plan.missing ? ' · ' + plan.missing + ' replica slots could not be filled' : '',
        plan.revision != null ? h('span', { class: 'muted', text: ' · planned at revision ' + plan.revision }) : null),
      table, moves.length > MAX_ROWS ? h('p', { class: 'muted', text: 'First ' + MAX_ROWS + ' shown.' }) : null,
      h('p', { class: 'muted', text: 'Nothing has changed yet: this was a dry run. Running it starts the moves the balancer picks then.' })],
      ok: 'Run rebalance', disabled: !moves.length,
    });
    if (!ok) return;
    await act(button, async () => {
      const r = await api('POST', nsPath('/rebalance'), {});
      const started = (r.data && r.data.moves) || [];
      toast('Rebalance started ' + started.length + ' move' + (started.length === 1 ? '' : 's') + '.');
    });
  }

  // ---- wiring ---------------------------------------------------------------------------------
  function wire() {
    $('#ns-select').addEventListener('change', (e) => selectNamespace(e.target.value));
    $('#node-filter').addEventListener('input', (e) => { S.filter = e.target.value.trim(); renderHeat(); renderNodes(); });
    $('#heat-mode').addEventListener('change', (e) => { S.heatMode = e.target.value; renderHeat(); });
    $('#part-filter').addEventListener('input', () => S.selected && loadNodeDetail(S.selected).catch(showError));
    $('#node-detail-close').addEventListener('click', () => { S.selected = null; $('#node-detail').hidden = true; renderHeat(); renderNodes(); });
    $('#plan-btn').addEventListener('click', (e) => planAndRebalance(e.currentTarget));
    const canvas = $('#heatmap');
    canvas.addEventListener('mousemove', onHeatMove);
    canvas.addEventListener('mouseleave', () => { $('#heat-tip').hidden = true; });
    canvas.addEventListener('click', (ev) => { const i = heatIndexAt(ev); if (i >= 0) selectNode(heat.rows[i].id); });
    for (const th of document.querySelectorAll('#nodes-table th[data-sort]')) {
      th.addEventListener('click', () => {
        if (S.sortKey === th.dataset.sort) S.sortDir = -S.sortDir;
        else { S.sortKey = th.dataset.sort; S.sortDir = th.dataset.sort === 'replicas' ? -1 : 1; }
        renderNodes();
      });
    }
    $('#part-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const pid = $('#part-id').value.trim();
      if (pid) loadPartition(pid).catch(showError);
    });
    $('#key-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const key = $('#key-input').value;
      try {
        const r = await api('GET', nsPath('/lookup?key=' + enc(key)));
        const hist = await api('GET', nsPath('/partitions/' + enc(r.data.partition) + '/history'));
        S.partShown = r.data.partition;
        renderPartition(r.data, { key, slot: r.data.slot }, (hist.data && hist.data.history) || []);
      } catch (err) { showError(err); }
    });
    document.addEventListener('click', (e) => {
      const t = e.target.closest('a.node-link, a.part-link, button.act');
      if (!t) return;
      e.preventDefault();
      const d = t.dataset;
      if (t.classList.contains('node-link')) selectNode(d.node);
      else if (t.classList.contains('part-link')) { $('#part-id').value = d.partition; loadPartition(d.partition).catch(showError); $('#partition-panel').scrollIntoView({ block: 'nearest', behavior: 'smooth' }); }
      else if (d.action === 'drain') drain(d.node, t);
      else if (d.action === 'undrain') undrain(d.node, t);
      else if (d.action === 'stoppable') stoppable(d.node, t);
      else if (d.action === 'move') movePartition(d.partition, d.slot, d.from, t);
      else if (d.action === 'cancel') cancelMove(d.partition, d.slot, t);
    });
    window.addEventListener('hashchange', () => {
      const want = wantedNamespace();
      if (want && want !== S.ns) selectNamespace(want);
    });
    if (window.ResizeObserver) {
      let w = 0;
      new ResizeObserver((ents) => {
        const nw = Math.round(ents[0].contentRect.width);
        if (nw !== w) { w = nw; renderHeat(); }
      }).observe($('.heat-wrap'));
    }
    // Ages tick locally; load, status and the namespace list are re-read periodically, since
    // ping-reported load does not bump the revision.
    setInterval(() => {
      const dt = Date.now() - S.movesAt;
      for (const td of document.querySelectorAll('#moves-table td.age')) td.textContent = fmtAge((Number(td.dataset.age) || 0) + dt);
      if (S.status && !S.status.error) renderStatus();
    }, 1000);
    setInterval(() => {
      loadStatus();
      if (!S.ns || document.hidden) return;
      const gen = S.gen;
      Promise.allSettled([detailsDue() ? loadDetails() : null, S.moves.length ? loadMoves() : null, loadNamespaces()]).then(() => {
        if (gen === S.gen) render();
      });
    }, PERIODIC_MS);
  }

  wire();
  loadStatus();
  start();
})();
