import { escapeXml, step, text } from '../pipeline/svg.ts';
import { type AnswerKind, answerKinds } from './load.ts';
import type { Results } from './report.ts';

// The race as one hand-written SVG, two charts on one time axis (seconds from the first submission):
// the door's answers per second by kind (left), and the units left in PostgreSQL (right), with the
// moments the last unit was sold and the last order was submitted marked on both.

const W = 980;
const H = 420;
const FONT = 'font-family="system-ui, sans-serif" font-size="12"';
const colors: Record<AnswerKind, string> = {
  accepted: '#2e7d32',
  sold_out: '#1f4e79',
  busy: '#ed7d31',
  other: '#c00000',
};
const labels: Record<AnswerKind, string> = {
  accepted: '201 accepted',
  sold_out: '409 sold_out',
  busy: '429 checkout_busy',
  other: 'other',
};

type Series = { label: string; color: string; points: Array<[number, number]>; stepped?: boolean };
type Marker = { t: number; label: string };
type Chart = { x0: number; y0: number; w: number; h: number; title: string; xMax: number; series: Series[] };

function chart(c: Chart, markers: Marker[]): string[] {
  const yMax = Math.max(1, ...c.series.flatMap((s) => s.points.map(([, n]) => n))) * 1.05;
  const px = (t: number) => c.x0 + (Math.min(t, c.xMax) / c.xMax) * c.w;
  const py = (n: number) => c.y0 + c.h - (n / yMax) * c.h;
  const out = [
    text(c.x0 - 45, c.y0 - 30, c.title, 'font-weight="bold" font-size="14"'),
    `<line x1="${c.x0}" y1="${c.y0 + c.h}" x2="${c.x0 + c.w}" y2="${c.y0 + c.h}" stroke="#333"/>`,
    `<line x1="${c.x0}" y1="${c.y0}" x2="${c.x0}" y2="${c.y0 + c.h}" stroke="#333"/>`,
  ];
  const xs = step(c.xMax, 6);
  for (let t = 0; t <= c.xMax + 1e-9; t += xs) {
    out.push(`<line x1="${px(t)}" y1="${c.y0 + c.h}" x2="${px(t)}" y2="${c.y0 + c.h + 4}" stroke="#333"/>`);
    out.push(text(px(t), c.y0 + c.h + 17, `${Number(t.toPrecision(3))}`, 'text-anchor="middle"'));
  }
  out.push(text(c.x0 + c.w / 2, c.y0 + c.h + 34, 'seconds from the first submission', 'text-anchor="middle"'));
  const ys = step(yMax, 5);
  for (let n = 0; n <= yMax; n += ys) {
    out.push(`<line x1="${c.x0 - 4}" y1="${py(n)}" x2="${c.x0 + c.w}" y2="${py(n)}" stroke="#ddd"/>`);
    out.push(text(c.x0 - 7, py(n) + 4, String(Number(n.toPrecision(4))), 'text-anchor="end"'));
  }
  markers.forEach((m, i) => {
    const x = px(m.t);
    out.push(`<line x1="${x}" y1="${c.y0}" x2="${x}" y2="${c.y0 + c.h}" stroke="#777" stroke-dasharray="4 3"/>`);
    // Labels near the right edge stand on the line's left, inside the chart.
    const right = x > c.x0 + c.w - 90;
    const attrs = `fill="#555" font-size="11"${right ? ' text-anchor="end"' : ''}`;
    out.push(text(right ? x - 3 : x + 3, c.y0 + c.h - 6 - i * 14, m.label, attrs));
  });
  c.series.forEach((s, i) => {
    const points = s.points.flatMap(([t, n], j) => {
      const here = `${px(t).toFixed(1)},${py(n).toFixed(1)}`;
      const before = s.points[j - 1];
      return s.stepped && before ? [`${px(t).toFixed(1)},${py(before[1]).toFixed(1)}`, here] : [here];
    });
    out.push(`<polyline points="${points.join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    // The legend in a row between the title and the chart, clear of the data.
    const lx = c.x0 + i * 120;
    const ly = c.y0 - 8;
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 16}" y2="${ly}" stroke="${s.color}" stroke-width="3"/>`);
    out.push(text(lx + 20, ly + 4, s.label, 'font-size="11"'));
  });
  return out;
}

export function renderFlashSaleSvg(r: Results): string {
  const rates = r.timelines.answersPerSecond;
  const answerSeries: Series[] = answerKinds
    .map((kind, k) => ({
      label: labels[kind],
      color: colors[kind],
      points: rates.rows.map((row): [number, number] => [row[0]!, row[1 + k]!]),
    }))
    .filter((series) => series.points.some(([, n]) => n > 0));
  const units = r.timelines.unitsLeft;
  const xMax = Math.max(0.001, r.race.wallS, units.at(-1)?.[0] ?? 0);
  const markers: Marker[] = [];
  if (r.race.soldOutS !== null) markers.push({ t: r.race.soldOutS, label: 'last unit sold' });
  if (r.race.lastSubmissionS !== null) markers.push({ t: r.race.lastSubmissionS, label: 'last submission' });
  const gate = r.admissionGate.counterSeeded ? 'admission gate on' : 'NO admission gate';
  const title =
    `orderflow flash sale, ${r.date.slice(0, 16)}, ${r.commit}, ${r.machine.cpus} CPUs: ${r.parameters.buyers} buyers, ` +
    `${r.parameters.units} units, ${gate}; accepted ${r.accepted}, completed ${r.completed}, oversold ${r.oversold}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT}>`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    text(20, 20, title, 'font-size="12" fill="#555"'),
    ...chart(
      {
        x0: 70,
        y0: 75,
        w: 380,
        h: 270,
        title: `Door answers per second (${rates.bucketMs} ms buckets)`,
        xMax,
        series: answerSeries,
      },
      markers,
    ),
    ...chart(
      {
        x0: 560,
        y0: 75,
        w: 380,
        h: 270,
        title: 'Units left (inventory.available, polled)',
        xMax,
        series: [{ label: 'available', color: '#1f4e79', points: units, stepped: true }],
      },
      markers,
    ),
    '</svg>',
    '',
  ].join('\n');
}
