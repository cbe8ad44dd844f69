// A hand-written SVG bar chart of gfs/MooseFS ratios (>1 = gfs better): one horizontal bar per
// workload on a log scale, growing from the 1.0 line, whiskers for the per-repetition spread,
// and per-row markers where the issue sets a higher target (3x for tar -x and ls -lR).

export interface ChartBar {
  label: string;
  ratio: number;
  range?: [number, number];
  /** Target ratio for this row (1 unless the issue says more). */
  target?: number;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function ratioChart(bars: ChartBar[], title: string, subtitle: string): string {
  const W = 980;
  const labelW = 330;
  const x0 = labelW + 10;
  const x1 = W - 70;
  const rowH = 28;
  const top = 86;
  const H = top + Math.max(1, bars.length) * rowH + 70;

  const vals = bars.flatMap((b) => [b.ratio, ...(b.range ?? []), b.target ?? 1]).filter((v) => v > 0 && Number.isFinite(v));
  const lo = Math.min(0.1, ...vals.map((v) => v / 1.3));
  const hi = Math.max(4, ...vals.map((v) => v * 1.3));
  const l0 = Math.log10(lo);
  const l1 = Math.log10(hi);
  const x = (v: number) => x0 + ((Math.log10(Math.min(hi, Math.max(lo, v))) - l0) / (l1 - l0)) * (x1 - x0);

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="13">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="17" font-weight="bold">${esc(title)}</text>`);
  out.push(`<text x="${W / 2}" y="44" text-anchor="middle" fill="#555">${esc(subtitle)}</text>`);

  // Grid and axis ticks.
  const ticks = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500].filter((t) => t >= lo && t <= hi);
  const yTop = top - 8;
  const yBot = top + bars.length * rowH + 4;
  for (const t of ticks) {
    out.push(`<line x1="${x(t).toFixed(1)}" y1="${yTop}" x2="${x(t).toFixed(1)}" y2="${yBot}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${x(t).toFixed(1)}" y="${yBot + 16}" text-anchor="middle" fill="#555" font-size="11">${t}x</text>`);
  }
  out.push(`<text x="${((x0 + x1) / 2).toFixed(1)}" y="${yBot + 34}" text-anchor="middle" fill="#333">gfs / MooseFS (log scale; &gt;1 = gfs better; time metrics inverted)</text>`);
  out.push(`<text x="${x(1).toFixed(1)}" y="${top - 14}" text-anchor="middle" fill="#333">1.0</text>`);

  bars.forEach((b, i) => {
    const yc = top + i * rowH + rowH / 2;
    const target = b.target ?? 1;
    const good = b.ratio >= target;
    const color = good ? '#3a9a4a' : b.ratio >= 1 ? '#e0a030' : '#d0493b';
    const xa = x(Math.min(1, b.ratio));
    const xb = x(Math.max(1, b.ratio));
    out.push(`<text x="${labelW}" y="${yc + 4}" text-anchor="end">${esc(b.label)}</text>`);
    out.push(`<rect x="${xa.toFixed(1)}" y="${yc - 9}" width="${Math.max(1, xb - xa).toFixed(1)}" height="18" fill="${color}"/>`);
    if (b.range && b.range[0] !== b.range[1]) {
      const [ra, rb] = b.range;
      out.push(`<line x1="${x(ra).toFixed(1)}" y1="${yc}" x2="${x(rb).toFixed(1)}" y2="${yc}" stroke="#222" stroke-width="1.2"/>`);
      for (const r of [ra, rb]) out.push(`<line x1="${x(r).toFixed(1)}" y1="${yc - 5}" x2="${x(r).toFixed(1)}" y2="${yc + 5}" stroke="#222" stroke-width="1.2"/>`);
    }
    if (target > 1) {
      out.push(`<line x1="${x(target).toFixed(1)}" y1="${yc - 13}" x2="${x(target).toFixed(1)}" y2="${yc + 13}" stroke="#7b2cbf" stroke-width="2.5" stroke-dasharray="4 2"/>`);
      out.push(`<text x="${(x(target) + 4).toFixed(1)}" y="${yc - 4}" fill="#7b2cbf" font-size="10">${target}x target</text>`);
    }
    const tx = Math.max(xb, b.range ? x(b.range[1]) : 0) + 6;
    out.push(`<text x="${tx.toFixed(1)}" y="${yc + 4}" font-weight="bold">${b.ratio.toFixed(2)}x</text>`);
  });
  // The 1.0 line over the bars.
  out.push(`<line x1="${x(1).toFixed(1)}" y1="${yTop}" x2="${x(1).toFixed(1)}" y2="${yBot}" stroke="#000" stroke-width="2"/>`);

  const ly = H - 14;
  out.push(`<rect x="${x0}" y="${ly - 10}" width="12" height="12" fill="#3a9a4a"/><text x="${x0 + 16}" y="${ly}">meets target</text>`);
  out.push(`<rect x="${x0 + 120}" y="${ly - 10}" width="12" height="12" fill="#e0a030"/><text x="${x0 + 136}" y="${ly}">ahead, below target</text>`);
  out.push(`<rect x="${x0 + 290}" y="${ly - 10}" width="12" height="12" fill="#d0493b"/><text x="${x0 + 306}" y="${ly}">behind MooseFS</text>`);
  out.push(`<line x1="${x0 + 430}" y1="${ly - 10}" x2="${x0 + 430}" y2="${ly + 2}" stroke="#7b2cbf" stroke-width="2.5" stroke-dasharray="4 2"/><text x="${x0 + 436}" y="${ly}">3x target (tar -x, ls -lR)</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
