// A labelled Prometheus histogram for hot paths. prom-client's histogram hashes the label set
// on every observe, even through a child from labels(); with one observe per FUSE op, RPC and
// data frame that was 4-6% of a process's CPU. Here a child is resolved once and an observe is
// a short scan of the bucket bounds and three increments; the text is made only when scraped.

interface Series {
  labels: string;
  buckets: Float64Array;
  sum: number;
  count: number;
}

export interface HistogramChild {
  observe(seconds: number): void;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export class FastHistogram {
  private readonly series = new Map<string, Series>();
  private readonly bounds: Float64Array;
  private readonly leText: string[];

  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly labelNames: readonly string[],
    buckets: readonly number[],
  ) {
    this.bounds = Float64Array.from(buckets);
    this.leText = [...buckets.map(String), '+Inf'];
  }

  /** The child for these label values (in labelNames order); keep it for the hot path. */
  labels(...values: string[]): HistogramChild {
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (!s) {
      const labels = this.labelNames.map((n, i) => `${n}="${escapeLabel(values[i] ?? '')}"`).join(',');
      s = { labels, buckets: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    const series = s;
    const bounds = this.bounds;
    return {
      observe(v: number): void {
        let i = 0;
        while (i < bounds.length && v > bounds[i]!) i++;
        series.buckets[i]!++;
        series.sum += v;
        series.count++;
      },
    };
  }

  /** Forgets every series (tests, a metrics switch). */
  reset(): void {
    this.series.clear();
  }

  /** Exposition text, `defaults` (e.g. `role="mount"`) leading each label set as prom-client does. */
  text(defaults: string): string {
    if (this.series.size === 0) return '';
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      const own = [defaults, s.labels].filter(Boolean).join(',');
      let cum = 0;
      for (let i = 0; i < s.buckets.length; i++) {
        cum += s.buckets[i]!;
        out.push(`${this.name}_bucket{le="${this.leText[i]}"${own ? `,${own}` : ''}} ${cum}`);
      }
      out.push(`${this.name}_sum{${own}} ${s.sum}`);
      out.push(`${this.name}_count{${own}} ${s.count}`);
    }
    return `${out.join('\n')}\n`;
  }
}
