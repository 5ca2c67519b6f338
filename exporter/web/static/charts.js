'use strict';
// Latency charts: one card per histogram series with a bar chart of its
// exponential buckets on a logarithmic latency axis, p50/p90/p99 markers,
// and a small history of the percentiles per collection.
const Charts = (() => {
  const W = 560, H = 210;                     // viewBox of the bar chart
  const PAD = {l: 52, r: 14, t: 38, b: 26};
  const PCT = [['p50', '#2f7d32'], ['p90', '#c77700'], ['p99', '#c62828']];

  function render(host, data, mode) {
    host.textContent = '';
    const cards = [];
    for (const m of data.metrics || []) {
      for (const s of m.series || []) cards.push(card(m, s, mode));
    }
    if (cards.length === 0) {
      host.append(el('p', {class: 'empty'}, 'No latency readings yet.'));
    }
    host.append(...cards);
    if ((data.counters || []).length > 0) host.append(counterTable(data.counters));
  }

  function card(m, s, mode) {
    const d = s[mode];
    const title = el('div', {class: 'hist-title'},
      el('span', {class: 'metric'}, m.name),
      el('span', {class: 'attrs'}, fmt.attrs(s.attrs)));
    const rate = d.window_seconds > 0 ? d.count / d.window_seconds : null;
    const mean = d.count > 0 ? d.sum_seconds / d.count : null;
    const stats = el('div', {class: 'hist-stats'},
      stat('count', fmt.count(d.count)),
      stat('per second', rate === null ? '–' : fmt.count(rate)),
      stat('mean', fmt.duration(mean)),
      ...PCT.map(([p, c]) => stat(p, fmt.duration(d[p]), c)));
    const notes = [];
    if (d.zero_count > 0) notes.push(`${fmt.count(d.zero_count)} of 0 ns`);
    if (d.overflow > 0) notes.push(`${fmt.count(d.overflow)} above the top bucket`);
    if (mode === 'last_minute' && d.window_seconds > 0 && d.window_seconds < 59) {
      notes.push(`only ${Math.round(d.window_seconds)} s of readings so far`);
    }
    return el('div', {class: 'hist-card'}, title,
      m.description ? el('div', {class: 'muted desc'}, m.description) : null,
      stats, bars(m, s, d),
      notes.length ? el('div', {class: 'muted note'}, notes.join(' · ')) : null,
      history(s.history || []));
  }

  function stat(label, value, colour) {
    return el('div', {class: 'stat'},
      el('div', {class: 'stat-value' + (colour ? ' ' + label : '')}, value),
      el('div', {class: 'stat-label'}, label));
  }

  function bars(m, s, d) {
    const svg = el('svg', {
      class: 'hist-chart', viewBox: `0 0 ${W} ${H}`, role: 'img',
      'aria-label': `${m.name} latency histogram`,
      'data-metric': m.name, 'data-series': fmt.attrs(s.attrs),
      'data-count': d.count, 'data-buckets': d.buckets.filter(b => b.count > 0).length,
    });
    const buckets = d.buckets;
    if (buckets.length === 0) {
      svg.append(el('text', {x: W / 2, y: H / 2, class: 'chart-empty', 'text-anchor': 'middle'}, 'no values in this window'));
      return svg;
    }
    // The axis spans at least a decade around the occupied buckets, with a
    // margin on each side so the outer bars don't touch the frame.
    let lo = buckets[0].lower / 1.3, hi = buckets[buckets.length - 1].upper * 1.3;
    const mid = Math.sqrt(lo * hi);
    lo = Math.min(lo, mid / Math.sqrt(10)); hi = Math.max(hi, mid * Math.sqrt(10));
    const lx = Math.log(lo), span = Math.log(hi) - lx;
    const x = v => PAD.l + (Math.log(v) - lx) / span * (W - PAD.l - PAD.r);
    const max = Math.max(...buckets.map(b => b.count));
    const y = c => H - PAD.b - c / max * (H - PAD.t - PAD.b);

    axes(svg, lo, hi, x, max, y);
    for (const b of buckets) {
      if (b.count === 0) continue;
      const x0 = x(b.lower), x1 = x(b.upper);
      const r = el('rect', {
        class: 'bar', x: x0.toFixed(2), y: y(b.count).toFixed(2),
        width: Math.max(x1 - x0 - 0.6, 0.6).toFixed(2), height: (H - PAD.b - y(b.count)).toFixed(2),
        'data-lower': b.lower, 'data-upper': b.upper, 'data-count': b.count,
      });
      r.append(el('title', null, `${fmt.duration(b.lower)} – ${fmt.duration(b.upper)}: ${fmt.count(b.count)}`));
      svg.append(r);
    }
    markers(svg, d, x);
    return svg;
  }

  function axes(svg, lo, hi, x, max, y) {
    svg.append(el('line', {class: 'axis', x1: PAD.l, x2: W - PAD.r, y1: H - PAD.b, y2: H - PAD.b}));
    for (let e = Math.ceil(Math.log10(lo)); e <= Math.floor(Math.log10(hi)); e++) {
      const v = Math.pow(10, e), px = x(v);
      svg.append(el('line', {class: 'grid', x1: px, x2: px, y1: PAD.t, y2: H - PAD.b}));
      svg.append(el('text', {class: 'tick', x: px, y: H - PAD.b + 15, 'text-anchor': 'middle'}, fmt.duration(v)));
    }
    for (const f of [0.5, 1]) {
      const c = max * f;
      svg.append(el('line', {class: 'grid', x1: PAD.l, x2: W - PAD.r, y1: y(c), y2: y(c)}));
      svg.append(el('text', {class: 'tick', x: PAD.l - 6, y: y(c) + 4, 'text-anchor': 'end'}, fmt.count(Math.round(c))));
    }
  }

  // markers draws the percentile lines. Each label has its own row above
  // the bars so close percentiles never overlap; the values are in the
  // stats row above the chart, in the same colours.
  function markers(svg, d, x) {
    PCT.forEach(([p, colour], i) => {
      if (d[p] === null || d[p] === undefined || d[p] <= 0) return;
      const px = x(d[p]), ly = 10 + i * 11;
      svg.append(el('line', {class: 'pct', x1: px, x2: px, y1: ly + 2, y2: H - PAD.b, stroke: colour, 'data-p': p}));
      const anchor = px > W - 40 ? 'end' : 'start';
      svg.append(el('text', {class: 'pct-label ' + p, x: anchor === 'end' ? px - 3 : px + 3, y: ly, fill: colour, 'text-anchor': anchor}, p));
    });
  }

  // history draws p50 and p99 per collection over the retained hour.
  function history(points) {
    const hw = W, hh = 78, pl = PAD.l, pr = PAD.r;
    const svg = el('svg', {class: 'hist-history', viewBox: `0 0 ${hw} ${hh}`, role: 'img', 'aria-label': 'percentiles over time'});
    const pts = points.filter(p => p.p99 !== null && p.p99 > 0);
    if (pts.length < 2) return svg;
    const t0 = Date.parse(pts[0].t), t1 = Date.parse(pts[pts.length - 1].t);
    const maxV = Math.max(...pts.map(p => p.p99));
    const minV = Math.min(...pts.map(p => p.p50 || p.p99));
    const lmin = Math.log(minV) - 0.1, lmax = Math.log(maxV) + 0.1;
    const px = t => pl + (Date.parse(t) - t0) / Math.max(t1 - t0, 1) * (hw - pl - pr);
    const py = v => hh - 14 - (Math.log(v) - lmin) / (lmax - lmin) * (hh - 30);
    svg.append(el('line', {class: 'axis', x1: pl, x2: hw - pr, y1: hh - 14, y2: hh - 14}));
    svg.append(el('text', {class: 'tick', x: pl, y: hh - 2}, fmt.clock(pts[0].t)));
    svg.append(el('text', {class: 'tick', x: hw - pr, y: hh - 2, 'text-anchor': 'end'}, fmt.clock(pts[pts.length - 1].t)));
    svg.append(el('text', {class: 'tick', x: pl - 6, y: py(maxV) + 4, 'text-anchor': 'end'}, fmt.duration(maxV)));
    let lx = pl + 4;
    for (const [p, colour] of [PCT[0], PCT[2]]) {
      const line = pts.filter(q => q[p] > 0).map(q => `${px(q.t).toFixed(1)},${py(q[p]).toFixed(1)}`).join(' ');
      svg.append(el('polyline', {class: 'trend', points: line, stroke: colour, 'data-p': p}));
      svg.append(el('text', {class: 'legend ' + p, x: lx, y: 9}, p));
      lx += 28;
    }
    svg.append(el('text', {class: 'tick', x: lx, y: 9}, 'per collection'));
    return svg;
  }

  function counterTable(counters) {
    const body = el('tbody');
    for (const c of counters) {
      body.append(el('tr', null,
        el('td', null, c.name, el('span', {class: 'attrs'}, ' ' + fmt.attrs(c.attrs))),
        el('td', {class: 'num'}, fmt.count(c.value)),
        el('td', {class: 'num'}, c.rate === undefined ? '–' : fmt.count(c.rate))));
    }
    return el('table', {class: 'counters'},
      el('thead', null, el('tr', null, el('th', null, 'Latency counter'), el('th', {class: 'num'}, 'Total'), el('th', {class: 'num'}, 'Per second'))),
      body);
  }

  return {render};
})();
