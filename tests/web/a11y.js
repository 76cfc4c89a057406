// Accessibility checks run inside the page (tests/web/test_browser.py): form controls
// with labels, images and charts with text alternatives, buttons and links with names,
// the skip link's target, and WCAG 2.2 contrast (1.4.3) of every visible text against
// the background it is painted on, computed from the page's own CSS.
() => {
  const problems = [];
  const visible = (e) => {
    const r = e.getBoundingClientRect();
    const s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'
      && !(s.position === 'absolute' && r.right < 0);
  };
  const name = (e) => (e.getAttribute('aria-label') || '').trim()
    || (e.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean)
         .map((id) => (document.getElementById(id) || {}).textContent || '').join(' ').trim();
  const where = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
    + (e.getAttribute('name') ? `[name=${e.getAttribute('name')}]` : '');
  // 1. every form control has a label (WCAG 1.3.1, 3.3.2, 4.1.2)
  for (const e of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (!(e.labels && e.labels.length) && !name(e) && !e.getAttribute('title')) {
      problems.push(`unlabelled control ${where(e)}`);
    }
  }
  // 2. images and charts have text alternatives (1.1.1)
  for (const e of document.querySelectorAll('img')) {
    if (!e.hasAttribute('alt')) problems.push(`img without alt ${e.src}`);
  }
  for (const e of document.querySelectorAll('svg')) {
    if (e.closest('svg') !== e || e.getAttribute('aria-hidden') === 'true') continue;
    const title = e.querySelector(':scope > title');
    if (e.getAttribute('role') !== 'img' || !(name(e) || (title && title.textContent.trim()))) {
      problems.push(`svg without role=img and a title: ${(e.outerHTML || '').slice(0, 80)}`);
    }
  }
  // 3. buttons and links have names (2.4.4, 4.1.2)
  for (const e of document.querySelectorAll('button, a[href], summary')) {
    if (!(e.textContent.trim() || name(e) || e.getAttribute('title'))) {
      problems.push(`${where(e)} without an accessible name`);
    }
  }
  // 4. the skip link is the first focusable element and its target exists (2.4.1)
  const first = document.querySelector('a[href], button, input:not([type=hidden]), select, textarea');
  if (!first || !first.classList.contains('skip')) problems.push('the first focus stop is not the skip link');
  else if (!document.querySelector(first.getAttribute('href'))) problems.push('the skip link has no target');
  // 5. contrast of every visible text node against its painted background (1.4.3)
  const rgba = (text) => {
    const m = text.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const over = (top, under) => top.slice(0, 3).map((c, i) => c * top[3] + under[i] * (1 - top[3]));
  const background = (e) => {
    const layers = [];
    for (let n = e; n && n.nodeType === 1; n = n.parentElement) {
      const s = getComputedStyle(n);
      let c = null;
      if (n instanceof SVGElement && n.tagName.toLowerCase() !== 'svg') c = null;
      else c = rgba(s.backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let base = [255, 255, 255];
    for (const c of layers.reverse()) base = over(c, base);
    return base;
  };
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    const e = t.parentElement;
    if (!e || seen.has(e) || !t.textContent.trim()) continue;
    seen.add(e);
    if (e.closest('title, desc, style, script, noscript, option, .sr-only')) continue;
    if (!visible(e)) continue;
    const s = getComputedStyle(e);
    const svgText = e instanceof SVGElement;
    const fg = rgba(svgText ? s.fill : s.color);
    if (!fg) continue;
    const bg = background(e);
    const colour = over(fg, bg);
    const [hi, lo] = [lum(colour), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(s.fontSize);
    const bold = parseInt(s.fontWeight, 10) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) {
      problems.push(`contrast ${ratio.toFixed(2)}:1 for "${t.textContent.trim().slice(0, 30)}" in ${where(e)}`);
    }
  }
  return problems;
}
