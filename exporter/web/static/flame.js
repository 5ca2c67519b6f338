'use strict';
// The flame graph: an icicle of SVG rectangles, the root on top, each
// frame as wide as its share of the samples. Click zooms into a frame,
// hover shows its numbers, and the search box highlights matching frames.
const Flame = (() => {
  const ROW = 20;        // px per stack depth
  const MIN_WIDTH = 0.4; // frames thinner than this are not drawn
  const CHAR = 7;        // approximate px per character at the label size

  let root = null;       // the tree from /api/flamegraph, with parent links
  let focus = null;      // the zoomed-into frame
  let wanted = null;     // a path of names to zoom into when data arrives
  let query = '';
  let kind = 'cpu';      // 'cpu': values are samples; 'off_cpu': nanoseconds blocked
  let host, tooltip, detail, crumbs, onZoom;

  function init(container, tip, detailEl, crumbsEl, zoomed) {
    host = container; tooltip = tip; detail = detailEl; crumbs = crumbsEl; onZoom = zoomed;
    window.addEventListener('resize', () => draw());
    document.addEventListener('keydown', ev => {
      if (ev.key === 'Escape' && root && focus !== root) setFocus(root);
    });
  }

  // setData replaces the tree, keeping the zoom on the same path of names
  // when it still exists.
  function setData(tree) {
    const path = wanted || (focus ? pathOf(focus) : []);
    wanted = null;
    root = link(tree, null);
    focus = root;
    for (const name of path.slice(1)) {
      const next = (focus.children || []).find(c => c.name === name);
      if (!next) break;
      focus = next;
    }
    draw();
  }

  function link(n, parent) {
    n.parent = parent;
    for (const c of n.children || []) link(c, n);
    return n;
  }

  function pathOf(n) {
    const p = [];
    for (; n; n = n.parent) p.unshift(n.name);
    return p;
  }

  // zoomTo asks for a path of names (from a bookmarked address).
  function zoomTo(path) {
    wanted = path;
  }

  function focusPath() {
    return focus ? pathOf(focus) : [];
  }

  function setFocus(n) {
    focus = n;
    tooltip.hidden = true;
    draw();
    if (onZoom) onZoom(pathOf(n));
  }

  // setKind says what the values are; the next setData brings the tree.
  function setKind(k) {
    kind = k;
  }

  // amount renders a value: "1.2k samples" or "3.45 s blocked".
  function amount(v) {
    return kind === 'off_cpu' ? `${fmt.duration(v / 1e9)} blocked` : `${fmt.count(v)} samples`;
  }

  function setQuery(q) {
    query = q.trim().toLowerCase();
    draw();
  }

  function matches(n) {
    return query !== '' && n.name.toLowerCase().includes(query);
  }

  // colour: warm hues keyed by name so a function keeps its colour across
  // refreshes; the service row is blue-grey, matches are violet.
  function colour(n, depth) {
    if (query !== '') return matches(n) ? '#8e44ef' : '#e4e1ea';
    if (depth === 0) return '#9aa5b1';
    if (depth === 1) return '#7c98b6';
    let h = 0;
    for (let i = 0; i < n.name.length; i++) h = (h * 31 + n.name.charCodeAt(i)) >>> 0;
    const hue = 8 + (h % 42);
    const light = 56 + ((h >> 8) % 14);
    return `hsl(${hue}, 85%, ${light}%)`;
  }

  function draw() {
    if (!host) return;
    host.textContent = '';
    if (!root || !root.value) {
      host.append(el('p', {class: 'empty'}, kind === 'off_cpu'
        ? 'No off-CPU time in this window: the agent makes off-CPU profiles with profiler.off_cpu.enabled: true.'
        : 'No CPU samples in this window yet.'));
      drawCrumbs();
      return;
    }
    const width = Math.max(host.clientWidth, 300);
    const rows = [];
    // Ancestors of the focus span the full width, greyed.
    const ancestors = pathNodes(focus).slice(0, -1);
    ancestors.forEach((n, d) => rows.push({n, d, x: 0, w: width, dim: true}));
    layout(focus, ancestors.length, 0, width / focus.value, rows);
    const depth = rows.reduce((m, r) => Math.max(m, r.d), 0) + 1;
    const svg = el('svg', {
      class: 'flame-svg', width, height: depth * ROW, viewBox: `0 0 ${width} ${depth * ROW}`,
      'data-total': root.value, 'data-frames': rows.length, 'data-focus': focus.name, 'data-kind': kind, role: 'img',
      'aria-label': kind === 'off_cpu' ? 'Off-CPU flame graph' : 'CPU flame graph',
    });
    let hits = 0;
    for (const r of rows) {
      if (matches(r.n)) hits += 1;
      svg.append(frame(r));
    }
    host.append(svg);
    drawCrumbs();
    if (query !== '') {
      detail.textContent = `${hits} frame${hits === 1 ? " matches" : "s match"} “${query}”: ${fmt.percent(matchedValue(focus), focus.value)} of the ${kind === 'off_cpu' ? 'blocked time' : 'samples'} in view.`;
    }
  }

  function pathNodes(n) {
    const p = [];
    for (; n; n = n.parent) p.unshift(n);
    return p;
  }

  function layout(n, depth, x, scale, rows) {
    const w = n.value * scale;
    if (w < MIN_WIDTH) return;
    rows.push({n, d: depth, x, w, dim: false});
    let cx = x;
    for (const c of n.children || []) {
      layout(c, depth + 1, cx, scale, rows);
      cx += c.value * scale;
    }
  }

  // matchedValue counts the samples under matching frames once, even when
  // a match is nested in another (recursion).
  function matchedValue(n) {
    if (matches(n)) return n.value;
    let v = 0;
    for (const c of n.children || []) v += matchedValue(c);
    return v;
  }

  function frame(r) {
    const g = el('g', {
      class: 'frame' + (r.dim ? ' dim' : '') + (matches(r.n) ? ' match' : ''),
      transform: `translate(${r.x.toFixed(2)},${r.d * ROW})`,
      'data-name': r.n.name, 'data-value': r.n.value,
    });
    g.append(el('rect', {width: Math.max(r.w - 0.5, 0.5).toFixed(2), height: ROW - 1, rx: 2, fill: colour(r.n, r.d)}));
    const chars = Math.floor((r.w - 6) / CHAR);
    if (chars >= 3) {
      const label = r.n.name.length <= chars ? r.n.name : r.n.name.slice(0, chars - 1) + '…';
      g.append(el('text', {x: 4, y: ROW - 6}, label));
    }
    g.addEventListener('click', () => zoom(r.n));
    g.addEventListener('mousemove', ev => hover(ev, r.n));
    g.addEventListener('mouseleave', () => { tooltip.hidden = true; });
    return g;
  }

  function zoom(n) {
    setFocus((n === focus && n.parent) ? n.parent : n);
  }

  function hover(ev, n) {
    tooltip.textContent = '';
    tooltip.append(
      el('div', {class: 'tip-name'}, n.name),
      el('div', null, `${amount(n.value)} · ${fmt.percent(n.value, root.value)} of all`),
      selfValue(n) > 0 ? el('div', null, `${amount(selfValue(n))} in the function itself`) : null,
      focus !== root ? el('div', null, `${fmt.percent(n.value, focus.value)} of ${focus.name}`) : null,
    );
    tooltip.hidden = false;
    const x = Math.min(ev.clientX + 14, window.innerWidth - tooltip.offsetWidth - 8);
    tooltip.style.left = x + 'px';
    tooltip.style.top = (ev.clientY + 16) + 'px';
    if (query === '') detail.textContent = pathOf(n).join(' › ');
  }

  // selfValue is the samples that stopped in n itself, not in a callee.
  function selfValue(n) {
    return n.value - (n.children || []).reduce((a, c) => a + c.value, 0);
  }

  function drawCrumbs() {
    crumbs.textContent = '';
    if (!focus || focus === root) return;
    for (const n of pathNodes(focus)) {
      const b = el('button', {type: 'button', class: 'crumb'}, n.name);
      b.addEventListener('click', () => setFocus(n));
      crumbs.append(b);
    }
  }

  return {init, setData, setQuery, setKind, amount, zoomTo, focusPath};
})();
