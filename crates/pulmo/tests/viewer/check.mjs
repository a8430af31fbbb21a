// Opens a study in the real OHIF viewer (headless Chromium via playwright-core), loads pulmo's
// SEG and then its TID 1500 SR, takes a screenshot of each, and checks from what is drawn that
//   1. the SEG overlay is there: many viewport pixels of the first nodule's colour (hue-based, so
//      the segment fill blended over the CT counts as well as the opaque outline);
//   2. the SR's long axis is there: an SVG annotation line (cornerstone3D draws annotations as
//      SVG in the DOM) with a label "... <n> mm" where n equals --long-axis within 0.2 mm.
//
//   node check.mjs --url http://127.0.0.1:PORT --study UID --long-axis 15.01 --out DIR
//                  [--seg-series 9002] [--sr-series 9003] [--colour 255,128,0] [--fov-mm 330]
//
// Prints one JSON line (what was measured, the screenshots); exits 1 with `FAILED: reason` on
// stderr when a check fails, 2 on a usage or set-up error.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (fallback === undefined) {
    console.error(`usage: node check.mjs --url URL --study UID --long-axis MM --out DIR [--seg-series N] [--sr-series N] [--colour R,G,B]\nmissing --${name}`);
    process.exit(2);
  }
  return fallback;
}

const base = arg('url').replace(/\/+$/, '');
const study = arg('study');
const expectedLongAxis = Number(arg('long-axis'));
const outDir = arg('out');
const segSeries = arg('seg-series', '9002');
const srSeries = arg('sr-series', '9003');
const colour = arg('colour', '255,128,0').split(',').map(Number);
const MIN_SEG_PIXELS = Number(arg('min-seg-pixels', '150'));
const fovMm = Number(arg('fov-mm', '0'));
const TOLERANCE_MM = 0.2;
const LINE_TOLERANCE_MM = 0.5;
fs.mkdirSync(outDir, { recursive: true });

const result = { study, expected_long_axis_mm: expectedLongAxis, colour, screenshots: {} };
const started = Date.now();
const log = (msg) => console.error(`[check ${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);

function hue([r, g, b]) {
  const max = Math.max(r, g, b), min = Math.min(r, g, b), d = max - min;
  if (d === 0) return 0;
  let h = max === r ? ((g - b) / d) % 6 : max === g ? (b - r) / d + 2 : (r - g) / d + 4;
  return (h * 60 + 360) % 360;
}

let browser;
async function fail(reason) {
  result.error = reason;
  result.console_errors = consoleErrors.slice(0, 10);
  console.log(JSON.stringify(result));
  console.error(`FAILED: ${reason}`);
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
  ],
});
const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, deviceScaleFactor: 1 });
const page = await context.newPage();
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text().slice(0, 300)); });
page.on('pageerror', (e) => consoleErrors.push(String(e).slice(0, 300)));
page.on('response', (r) => { if (r.status() >= 400) consoleErrors.push(`HTTP ${r.status()} ${r.url().slice(0, 200)}`); });
// A blank page (no network) that decodes screenshots for pixel counting.
const scratch = await context.newPage();

// Pixels of `png` (a screenshot) whose colour is the nodule's colour, possibly blended with grey
// CT: hue within 15 degrees of the colour's hue and clearly saturated.
async function countColour(png) {
  return scratch.evaluate(async ({ b64, targetHue }) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = new OffscreenCanvas(img.width, img.height);
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, img.width, img.height).data;
    let n = 0, strong = 0;
    for (let i = 0; i < d.length; i += 4) {
      const r = d[i], gg = d[i + 1], b = d[i + 2];
      const max = Math.max(r, gg, b), min = Math.min(r, gg, b), delta = max - min;
      if (max < 60 || delta / max < 0.35) continue;
      let h = max === r ? ((gg - b) / delta) % 6 : max === gg ? (b - r) / delta + 2 : (r - gg) / delta + 4;
      h = (h * 60 + 360) % 360;
      const dh = Math.min(Math.abs(h - targetHue), 360 - Math.abs(h - targetHue));
      if (dh <= 15) {
        n++;
        if (delta / max > 0.8 && max > 200) strong++;
      }
    }
    return { matching: n, strong, total: d.length / 4 };
  }, { b64: png.toString('base64'), targetHue: hue(colour) });
}

// The viewport grid (the images and their overlays, no side panels).
async function viewportBox() {
  for (const sel of ['[data-cy="viewport-grid"]', '.viewport-wrapper', '[data-viewport-uid]', '.cornerstone-viewport-element']) {
    const el = page.locator(sel).first();
    if (await el.count() && await el.isVisible().catch(() => false)) {
      const box = await el.boundingBox();
      if (box && box.width > 100 && box.height > 100) return { sel, box };
    }
  }
  return null;
}

async function shoot(name) {
  const file = path.join(outDir, `${name}.png`);
  await page.screenshot({ path: file });
  result.screenshots[name] = path.resolve(file);
  const vp = await viewportBox();
  const png = vp ? await page.screenshot({ clip: vp.box }) : await page.screenshot();
  return { file, png, vp };
}

async function clickIfVisible(name) {
  const b = page.getByRole('button', { name, exact: false }).first();
  if (await b.isVisible().catch(() => false)) {
    await b.click().catch(() => {});
    log(`clicked "${name}"`);
    return true;
  }
  return false;
}

async function dismissDialogs() {
  for (const name of ['Skip all', 'Confirm and hide']) await clickIfVisible(name);
}

// OHIF sometimes loads the SR onto the right slice without drawing its annotations until the
// viewport renders again (seen in about one run of three); a user would move the mouse or scroll.
// Scroll one slice away and back, which re-renders the same image.
async function nudge(n) {
  const vp = await viewportBox();
  if (!vp) return;
  await page.mouse.move(vp.box.x + vp.box.width / 2, vp.box.y + vp.box.height / 2);
  await page.mouse.wheel(0, 120);
  await page.waitForTimeout(500);
  await page.mouse.wheel(0, -120);
  log(`nudge ${n}: scrolled one slice and back to make the viewport render again`);
}

async function openSeries(series, what) {
  const deadline = Date.now() + 60_000;
  let thumb;
  while (Date.now() < deadline) {
    await dismissDialogs();
    thumb = page.getByText(`S:${series}`, { exact: true }).first();
    if (await thumb.isVisible().catch(() => false)) break;
    await page.waitForTimeout(500);
  }
  if (!(await thumb.isVisible().catch(() => false))) {
    await shoot(`no-${what}-thumbnail`);
    await fail(`no thumbnail "S:${series}" (${what}) in the study browser after 60 s; console errors: ${JSON.stringify(consoleErrors.slice(0, 5))}`);
  }
  await thumb.dblclick();
  log(`double-clicked S:${series} (${what})`);
}

try {
  const url = `${base}/viewer?StudyInstanceUIDs=${encodeURIComponent(study)}`;
  result.url = url;
  await page.goto(url, { waitUntil: 'load', timeout: 60_000 });
  log(`opened ${url}`);

  // Let the CT load into the default layout; the baseline colour count must be small.
  await page.waitForTimeout(8000);
  await dismissDialogs();
  const before = await shoot('0-ct');
  result.ct_viewport = before.vp ? { selector: before.vp.sel, ...before.vp.box } : null;
  result.ct_colour_pixels = (await countColour(before.png)).matching;
  log(`CT alone: ${result.ct_colour_pixels} pixels of the nodule colour`);

  // 1. SEG: OHIF previews it and asks "Do you want to open this Segmentation?": yes.
  await openSeries(segSeries, 'SEG');
  const yes = page.getByRole('button', { name: 'Yes', exact: true }).first();
  await yes.waitFor({ state: 'visible', timeout: 30_000 }).then(() => yes.click()).then(() => log('clicked "Yes"'))
    .catch(() => log('no "open this Segmentation?" prompt within 30 s; going on'));
  let seg = { matching: 0, strong: 0 };
  const segDeadline = Date.now() + 60_000;
  while (Date.now() < segDeadline) {
    await page.waitForTimeout(1500);
    seg = await countColour((await shoot('1-seg')).png);
    if (seg.matching - result.ct_colour_pixels >= MIN_SEG_PIXELS) {
      await page.waitForTimeout(1500); // let it settle, then the final picture
      seg = await countColour((await shoot('1-seg')).png);
      break;
    }
  }
  result.seg_colour_pixels = seg.matching;
  result.seg_strong_colour_pixels = seg.strong;
  log(`SEG: ${seg.matching} pixels of the nodule colour (${seg.strong} near-pure)`);
  if (seg.matching - result.ct_colour_pixels < MIN_SEG_PIXELS) {
    await fail(`SEG overlay not seen: ${seg.matching} pixels near rgb(${colour}) after loading S:${segSeries} (CT alone: ${result.ct_colour_pixels}; want >= ${MIN_SEG_PIXELS} more)`);
  }

  // 2. SR: OHIF jumps to the measurement's slice and draws its SCOORD polyline (an SVG line or
  // polyline) and a text box (SVG text, one tspan a line: "Long axis: 15.01 mm", ...) joined to
  // it by a link line (dash 2,3), which is not counted as the measurement.
  await openSeries(srSeries, 'SR');
  let svg = { labels: [], lines: [] };
  const srOpened = Date.now();
  const srDeadline = srOpened + 60_000;
  const ready = (s) => s.lines.length > 0 && s.labels.some((l) => /long axis[^\d-]*[\d.]+\s*mm/i.test(l));
  let nudges = 0;
  while (Date.now() < srDeadline) {
    await page.waitForTimeout(1500);
    if (Date.now() - srOpened > 12_000 * (nudges + 1)) await nudge(++nudges);
    svg = await page.evaluate(() => {
      const out = { labels: [], lines: [], layer: null };
      for (const s of document.querySelectorAll('svg.svg-layer')) {
        if (!s.querySelector('[data-annotation-uid]')) continue;
        const r = s.getBoundingClientRect();
        out.layer = { width: r.width, height: r.height };
        for (const t of s.querySelectorAll('[data-annotation-uid] text')) {
          const parts = [...t.querySelectorAll('tspan')].map((x) => x.textContent.trim()).filter(Boolean);
          out.labels.push(...(parts.length ? parts : [t.textContent.trim()]));
        }
        for (const el of s.querySelectorAll('line, polyline')) {
          if ((el.getAttribute('stroke-dasharray') || '').replace(/\s/g, '') === '2,3') continue; // text-box link
          const pts = el.tagName === 'line'
            ? [[+el.getAttribute('x1'), +el.getAttribute('y1')], [+el.getAttribute('x2'), +el.getAttribute('y2')]]
            : el.getAttribute('points').trim().split(/[\s]+/).map((p) => p.split(',').map(Number));
          let len = 0;
          for (let i = 1; i < pts.length; i++) len += Math.hypot(pts[i][0] - pts[i - 1][0], pts[i][1] - pts[i - 1][1]);
          out.lines.push({ tag: el.tagName, points: pts, length_px: len, stroke: el.getAttribute('stroke') });
        }
      }
      return out;
    });
    if (ready(svg)) break;
  }
  await page.waitForTimeout(1000);
  await shoot('2-sr');
  result.svg_labels = svg.labels;
  result.svg_measurement_lines = svg.lines;
  const label = svg.labels.find((l) => /long axis[^\d-]*[\d.]+\s*mm/i.test(l));
  if (!label) await fail(`no "Long axis: ... mm" label drawn after loading S:${srSeries}; SVG labels: ${JSON.stringify(svg.labels)}`);
  if (svg.lines.length === 0) await fail(`label "${label}" but no measurement line in the SVG layer`);
  const mm = Number(/long axis[^\d-]*([\d.]+)\s*mm/i.exec(label)[1]);
  result.long_axis_label = label;
  result.long_axis_label_mm = mm;
  log(`SR: label "${label}", ${svg.lines.length} measurement line(s) of ${svg.lines.map((l) => l.length_px.toFixed(1)).join(', ')} px`);
  if (!(Math.abs(mm - expectedLongAxis) <= TOLERANCE_MM)) {
    await fail(`long axis labelled ${mm} mm ("${label}"), the SR says ${expectedLongAxis} mm (tolerance ${TOLERANCE_MM} mm)`);
  }
  // With --fov-mm (rows x pixel spacing of a square CT, shown fitted to the viewport's shorter
  // side) the longest drawn line is converted to mm: it must be the long axis too.
  if (fovMm) {
    const longest = Math.max(...svg.lines.map((l) => l.length_px));
    const mmPerPx = fovMm / Math.min(svg.layer.width, svg.layer.height);
    result.long_axis_line_mm = longest * mmPerPx;
    log(`SR: longest line ${longest.toFixed(1)} px x ${mmPerPx.toFixed(4)} mm/px = ${result.long_axis_line_mm.toFixed(2)} mm`);
    if (!(Math.abs(result.long_axis_line_mm - expectedLongAxis) <= LINE_TOLERANCE_MM)) {
      await fail(`the drawn line is ${result.long_axis_line_mm.toFixed(2)} mm long, the SR's long axis ${expectedLongAxis} mm (tolerance ${LINE_TOLERANCE_MM} mm)`);
    }
  }
  result.ok = true;
  result.seconds = (Date.now() - started) / 1000;
  console.log(JSON.stringify(result));
  await browser.close();
} catch (e) {
  await shoot('error').catch(() => {});
  await fail(`${e && e.message ? e.message.split('\n')[0] : e}; console errors: ${JSON.stringify(consoleErrors.slice(0, 5))}`);
}
