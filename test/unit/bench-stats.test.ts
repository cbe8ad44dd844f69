// The benchmark's medians: the middle run, or the mean of the two middle runs for an even count
// (a time budget can leave 2 repetitions; neither run alone is their median).
import { describe, expect, it } from 'vitest';
import { median, percentile } from '../../src/bench/stats.js';

describe('bench stats', () => {
  it('median: the middle value of an odd count, whatever the order', () => {
    expect(median([0.094, 0.082, 0.107])).toBe(0.094);
    expect(median([5])).toBe(5);
  });

  it('median: the mean of the two middle values of an even count', () => {
    expect(median([242, 299])).toBe(270.5);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('median of nothing is NaN; percentiles stay nearest-rank', () => {
    expect(median([])).toBeNaN();
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 99)).toBe(4);
  });
});
