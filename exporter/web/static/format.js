'use strict';
// Number and text formatting shared by the page's scripts.
const fmt = {
  // seconds → "850 ns", "12.3 µs", "4.56 ms", "1.20 s"
  duration(s) {
    if (s === null || s === undefined || !isFinite(s)) return '–';
    if (s === 0) return '0';
    const units = [[1e-6, 1e-9, 'ns'], [1e-3, 1e-6, 'µs'], [1, 1e-3, 'ms'], [Infinity, 1, 's']];
    for (const [below, div, unit] of units) {
      if (s < below) return fmt.sig(s / div) + ' ' + unit;
    }
    return fmt.sig(s) + ' s';
  },
  // three significant digits, no exponent
  sig(v) {
    if (v >= 100) return v.toFixed(0);
    if (v >= 10) return v.toFixed(1);
    return v.toFixed(2);
  },
  count(v) {
    if (v === null || v === undefined || !isFinite(v)) return '–';
    const a = Math.abs(v);
    if (a >= 1e9) return fmt.sig(v / 1e9) + 'G';
    if (a >= 1e6) return fmt.sig(v / 1e6) + 'M';
    if (a >= 1e4) return fmt.sig(v / 1e3) + 'k';
    return Number.isInteger(v) ? String(v) : fmt.sig(v);
  },
  bytes(v) {
    const units = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? v : fmt.sig(v)) + ' ' + units[i];
  },
  percent(part, whole) {
    if (!whole) return '0%';
    const p = 100 * part / whole;
    return (p >= 10 ? p.toFixed(1) : p.toFixed(2)) + '%';
  },
  attrs(a) {
    const keys = Object.keys(a || {}).sort();
    return keys.map(k => k + '=' + a[k]).join(', ');
  },
  clock(t) {
    const d = new Date(t);
    return isNaN(d) ? '' : d.toLocaleTimeString([], {hour12: false});
  },
};

// el builds an element: el('td', {class: 'num'}, 'text', child...).
// Attributes go through setAttribute and text through text nodes, so no
// data from the API is ever parsed as markup.
function el(tag, attrs, ...children) {
  const svg = ['svg', 'g', 'rect', 'text', 'line', 'path', 'polyline', 'title', 'clipPath'].includes(tag);
  const e = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return e;
}
