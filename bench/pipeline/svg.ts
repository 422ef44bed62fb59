import type { Timeline } from './ceiling.ts';

// The results as one hand-written SVG: CPU per order by process (left), and finished orders (product)
// and flows (ceiling) over time (right).

export type Plot = {
  title: string;
  cpuMsPerOrder: Array<[string, number]>;
  cpuTargetMs: number;
  product: { label: string; timeline: Timeline };
  ceiling: { label: string; timeline: Timeline };
};

const W = 980;
const H = 420;
const FONT = 'font-family="system-ui, sans-serif" font-size="12"';
export const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
export const text = (x: number, y: number, content: string, attrs = '') =>
  `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${escapeXml(content)}</text>`;

/** A round step for about `count` ticks up to `max`. */
export function step(max: number, count: number): number {
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw || 1));
  return [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
}

function cpuBars(plot: Plot): string[] {
  const [x0, y0, labelW, barMax, rowH] = [20, 75, 120, 270, 26];
  const max = Math.max(plot.cpuTargetMs, ...plot.cpuMsPerOrder.map(([, ms]) => ms)) * 1.1;
  const scale = (ms: number) => (ms / max) * barMax;
  const out = [text(x0, y0 - 25, 'CPU ms per order, by process', 'font-weight="bold" font-size="14"')];
  plot.cpuMsPerOrder.forEach(([name, ms], i) => {
    const y = y0 + i * rowH;
    const total = name === 'total';
    out.push(text(x0, y + 15, name, total ? 'font-weight="bold"' : ''));
    out.push(
      `<rect x="${x0 + labelW}" y="${y + 3}" width="${Math.max(0.5, scale(ms)).toFixed(1)}" height="${rowH - 8}" fill="${total ? '#1f4e79' : '#5b9bd5'}"/>`,
    );
    out.push(text(x0 + labelW + scale(ms) + 5, y + 15, ms.toFixed(2)));
  });
  const tx = x0 + labelW + scale(plot.cpuTargetMs);
  const bottom = y0 + plot.cpuMsPerOrder.length * rowH;
  out.push(`<line x1="${tx}" y1="${y0 - 5}" x2="${tx}" y2="${bottom}" stroke="#c00000" stroke-dasharray="4 3"/>`);
  out.push(text(tx, bottom + 15, `target total ≤ ${plot.cpuTargetMs} ms`, 'fill="#c00000" text-anchor="middle"'));
  return out;
}

function timelines(plot: Plot): string[] {
  const [x0, y0, w, h] = [560, 70, 380, 280];
  const series = [
    { ...plot.ceiling, color: '#ed7d31' },
    { ...plot.product, color: '#1f4e79' },
  ];
  const xMax = Math.max(0.001, ...series.flatMap((s) => s.timeline.map(([t]) => t)));
  const yMax = Math.max(1, ...series.flatMap((s) => s.timeline.map(([, n]) => n)));
  const px = (t: number) => x0 + (t / xMax) * w;
  const py = (n: number) => y0 + h - (n / yMax) * h;
  const out = [
    text(x0 - 50, y0 - 20, 'Finished over time (from the first submission)', 'font-weight="bold" font-size="14"'),
    `<line x1="${x0}" y1="${y0 + h}" x2="${x0 + w}" y2="${y0 + h}" stroke="#333"/>`,
    `<line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y0 + h}" stroke="#333"/>`,
  ];
  const xs = step(xMax, 6);
  for (let t = 0; t <= xMax + 1e-9; t += xs) {
    out.push(`<line x1="${px(t)}" y1="${y0 + h}" x2="${px(t)}" y2="${y0 + h + 4}" stroke="#333"/>`);
    out.push(text(px(t), y0 + h + 17, `${Number(t.toPrecision(3))}`, 'text-anchor="middle"'));
  }
  out.push(text(x0 + w / 2, y0 + h + 34, 'seconds', 'text-anchor="middle"'));
  const ys = step(yMax, 5);
  for (let n = 0; n <= yMax; n += ys) {
    out.push(`<line x1="${x0 - 4}" y1="${py(n)}" x2="${x0 + w}" y2="${py(n)}" stroke="#ddd"/>`);
    out.push(text(x0 - 7, py(n) + 4, String(n), 'text-anchor="end"'));
  }
  series.forEach((s, i) => {
    const points = s.timeline.map(([t, n]) => `${px(t).toFixed(1)},${py(n).toFixed(1)}`).join(' ');
    out.push(`<polyline points="${points}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    const ly = y0 + 12 + i * 18;
    out.push(`<line x1="${x0 + 12}" y1="${ly}" x2="${x0 + 32}" y2="${ly}" stroke="${s.color}" stroke-width="3"/>`);
    out.push(text(x0 + 38, ly + 4, s.label));
  });
  return out;
}

export function renderSvg(plot: Plot): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT}>`,
    `<title>${escapeXml(plot.title)}</title>`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    text(20, 20, plot.title, 'font-size="13" fill="#555"'),
    ...cpuBars(plot),
    ...timelines(plot),
    '</svg>',
    '',
  ].join('\n');
}
