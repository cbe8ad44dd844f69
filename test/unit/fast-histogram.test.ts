import { describe, expect, it } from 'vitest';
import { FastHistogram } from '../../src/common/fast-histogram.js';

describe('FastHistogram', () => {
  it('writes cumulative buckets ending at +Inf == _count, with sum, per label set', () => {
    const h = new FastHistogram('x_seconds', 'help text', ['op', 'outcome'], [0.001, 0.01, 0.1]);
    expect(h.text('role="t"')).toBe('');
    const ok = h.labels('read', 'ok');
    for (const v of [0.0005, 0.001, 0.005, 0.05, 7]) ok.observe(v);
    h.labels('odd"name\\', 'error').observe(0.02);
    const lines = h.text('role="t"').trim().split('\n');
    expect(lines.slice(0, 2)).toEqual(['# HELP x_seconds help text', '# TYPE x_seconds histogram']);
    expect(lines.slice(2, 8)).toEqual([
      'x_seconds_bucket{le="0.001",role="t",op="read",outcome="ok"} 2',
      'x_seconds_bucket{le="0.01",role="t",op="read",outcome="ok"} 3',
      'x_seconds_bucket{le="0.1",role="t",op="read",outcome="ok"} 4',
      'x_seconds_bucket{le="+Inf",role="t",op="read",outcome="ok"} 5',
      'x_seconds_sum{role="t",op="read",outcome="ok"} 7.0565',
      'x_seconds_count{role="t",op="read",outcome="ok"} 5',
    ]);
    expect(lines).toContain('x_seconds_count{role="t",op="odd\\"name\\\\",outcome="error"} 1');
    expect(h.labels('read', 'ok')).not.toBe(ok); // a new handle onto the same series
    h.labels('read', 'ok').observe(1);
    expect(h.text('')).toContain('x_seconds_count{op="read",outcome="ok"} 6');
  });
});
