'use strict';
// The page: fetches the JSON API every few seconds and redraws what changed.
(() => {
  const REFRESH_MS = 5000;
  const $ = id => document.getElementById(id);
  const state = {service: '', since: $('since').value, mode: 'last_minute', search: '', kind: 'cpu'};
  const last = {flame: '', hists: null};

  // The address's fragment keeps the view's state (#service=api&search=gc&
  // zoom=all&zoom=api...), so a view can be bookmarked or reloaded as is.
  const saved = new URLSearchParams(location.hash.slice(1));
  state.service = saved.get('service') || '';
  if (saved.has('since')) $('since').value = state.since = saved.get('since');
  state.search = $('search').value = saved.get('search') || '';
  if (saved.get('kind') === 'off_cpu') state.kind = 'off_cpu';

  function saveState() {
    const p = new URLSearchParams();
    if (state.service) p.set('service', state.service);
    if (state.since !== '15m') p.set('since', state.since);  // '' is "all kept"
    if (state.search) p.set('search', state.search);
    if (state.kind !== 'cpu') p.set('kind', state.kind);
    const path = Flame.focusPath();
    if (path.length > 1) for (const name of path) p.append('zoom', name);
    history.replaceState(null, '', p.toString() ? '#' + p.toString() : location.pathname);
  }

  Flame.init($('flame'), $('tooltip'), $('flame-detail'), $('crumbs'), saveState);
  showKind();
  if (saved.getAll('zoom').length > 0) Flame.zoomTo(saved.getAll('zoom'));
  Flame.setQuery(state.search);

  $('service').addEventListener('change', e => { state.service = e.target.value; saveState(); refresh(); });
  $('since').addEventListener('change', e => { state.since = e.target.value; saveState(); refresh(); });
  $('search').addEventListener('input', e => { state.search = e.target.value; Flame.setQuery(state.search); saveState(); });
  // The CPU / off-CPU switch: the flame graph, the process list and the
  // download show one kind of profile at a time.
  for (const b of $('kind').querySelectorAll('button')) {
    b.addEventListener('click', () => {
      if (state.kind === b.dataset.kind) return;
      state.kind = b.dataset.kind;
      last.flame = '';
      showKind();
      saveState();
      refresh();
    });
  }

  function showKind() {
    for (const o of $('kind').querySelectorAll('button')) o.classList.toggle('on', o.dataset.kind === state.kind);
    $('flame-title').textContent = state.kind === 'off_cpu' ? 'Off-CPU flame graph' : 'CPU flame graph';
    Flame.setKind(state.kind);
  }

  for (const b of $('mode').querySelectorAll('button')) {
    b.addEventListener('click', () => {
      state.mode = b.dataset.mode;
      for (const o of $('mode').querySelectorAll('button')) o.classList.toggle('on', o === b);
      if (last.hists) Charts.render($('hists'), last.hists, state.mode);
    });
  }

  async function getJSON(path) {
    const r = await fetch(path, {cache: 'no-store'});
    if (!r.ok) throw new Error(`${path}: ${r.status} ${(await r.text()).trim()}`);
    return r.json();
  }

  function query(extra) {
    const p = new URLSearchParams({since: state.since, kind: state.kind, ...extra});
    if (state.service) p.set('service', state.service);
    return p.toString();
  }

  async function refresh() {
    const download = $('download');
    download.href = '/api/profile.pb.gz?' + query();
    try {
      const [procs, flame, hists, self] = await Promise.all([
        getJSON('/api/processes?' + query({service: ''})),
        getJSON('/api/flamegraph?' + query()),
        getJSON('/api/histograms'),
        getJSON('/api/self'),
      ]);
      showProcesses(procs);
      showFlame(flame);
      last.hists = hists;
      Charts.render($('hists'), hists, state.mode);
      showSelf(self);
      setStatus(`updated ${fmt.clock(Date.now())}`, false);
    } catch (err) {
      setStatus(`cannot reach vigil: ${err.message}`, true);
    }
  }

  function setStatus(text, bad) {
    const s = $('status');
    s.textContent = text;
    s.classList.toggle('bad', bad);
  }

  function showProcesses(v) {
    const sel = $('service');
    const keep = state.service;
    sel.textContent = '';
    const total = v.processes.reduce((a, p) => a + p.value, 0);
    sel.append(el('option', {value: ''}, `All processes (${Flame.amount(total)})`));
    let found = keep === '';
    for (const p of v.processes) {
      sel.append(el('option', {value: p.service}, `${p.service} — ${Flame.amount(p.value)}`));
      if (p.service === keep) found = true;
    }
    if (!found) sel.append(el('option', {value: keep}, `${keep} — not seen in this window`));
    sel.value = keep;
  }

  function showFlame(v) {
    const key = JSON.stringify(v.root);
    const who = v.service ? v.service : 'all processes';
    if (v.kind !== state.kind) return; // an answer to the switch's previous position
    $('flame-summary').textContent = `${Flame.amount(v.root.value)} from ${who}, ${v.profiles} profile${v.profiles === 1 ? '' : 's'}, ${fmt.clock(v.from)} – ${fmt.clock(v.to)}`;
    if (key === last.flame) return; // unchanged: keep the zoom and hover as they are
    last.flame = key;
    Flame.setData(v.root);
  }

  function showSelf(v) {
    $('self-time').textContent = v.time && !v.time.startsWith('0001') ? `read at ${fmt.clock(v.time)}` : 'no reading yet';
    const body = $('self').tBodies[0];
    body.textContent = '';
    for (const c of v.counters) {
      body.append(el('tr', {'data-counter': c.name},
        el('td', null, c.name),
        el('td', {class: 'num'}, fmt.count(c.value)),
        el('td', {class: 'num'}, c.rate === undefined ? '–' : fmt.count(c.rate))));
    }
    if (v.counters.length === 0) body.append(el('tr', null, el('td', {colspan: 3, class: 'muted'}, 'No counters yet.')));
    const w = v.web, wb = $('webstats').tBodies[0];
    wb.textContent = '';
    for (const [k, val] of [
      ['profiles kept', fmt.count(w.profiles)],
      ['memory (estimated)', `${fmt.bytes(w.estimated_bytes)} of ${fmt.bytes(w.max_bytes)}`],
      ['retention', `${Math.round(w.retention_seconds / 60)} min`],
      ['dropped by age', fmt.count(w.evicted_by_age)],
      ['dropped for memory', fmt.count(w.evicted_by_bytes)],
      ['latency series', fmt.count(w.series)],
      ['latency memory (estimated)', fmt.bytes(w.histogram_bytes)],
      ['series refused (cap)', fmt.count(w.series_dropped)],
    ]) {
      wb.append(el('tr', null, el('td', null, k), el('td', {class: 'num'}, val)));
    }
  }

  refresh();
  // A tab in the background costs the agent nothing: no refresh until it
  // is shown again.
  setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh(); });
})();
