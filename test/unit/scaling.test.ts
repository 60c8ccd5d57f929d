// The scaling measurements' pure pieces: a rebalance pause is the longest stretch with no new effect
// after a change (never counted from before it, never after the work ran out), and the scaling report
// carries every measured figure.
import { scalingReport, type ScalingRun } from '../../src/bench/scaling-report';
import { describeChange, longestGap, pausesOf, type Sample } from '../../src/faults/scale';

const steady = (from: number, to: number, every: number, start: number, step: number): Sample[] => {
  const out: Sample[] = [];
  for (let at = from, n = start; at <= to; at += every, n += step) out.push({ at, applied: n });
  return out;
};

describe('longestGap', () => {
  it('finds the stretch with no progress between two readings that showed some', () => {
    const samples = [
      ...steady(0, 1_000, 100, 0, 10), // 0..100
      { at: 1_100, applied: 100 },
      { at: 1_900, applied: 100 },
      ...steady(2_000, 3_000, 100, 110, 10),
    ];
    expect(longestGap(samples, 500, 3_000)).toEqual({ ms: 1_000, from: 1_000 });
  });

  it('counts a pause from the change at the earliest, not from progress before it', () => {
    const samples = [{ at: 0, applied: 5 }, { at: 1_000, applied: 5 }, ...steady(1_600, 2_000, 100, 6, 1)];
    expect(longestGap(samples, 1_000, 2_000).ms).toBe(600);
  });

  it('counts a stretch still open at the end of the window while work is pending', () => {
    const samples = [...steady(0, 500, 100, 0, 1), { at: 2_000, applied: 5 }];
    expect(longestGap(samples, 0, 2_000, 100)).toEqual({ ms: 1_500, from: 500 });
  });

  it('stops counting once every effect is applied: an idle stream is not a pause', () => {
    const samples = [...steady(0, 500, 100, 0, 20), { at: 5_000, applied: 100 }];
    expect(longestGap(samples, 0, 5_000, 100).ms).toBe(100);
  });
});

describe('pausesOf', () => {
  it('measures each change from its start to a settle time after the groups were Stable', () => {
    const samples = [...steady(0, 1_000, 100, 0, 1), ...steady(3_000, 9_000, 100, 11, 1)];
    const [c] = pausesOf([{ what: 'join 1 → 2', at: 1_000, stableAt: 2_500 }], samples, 10_000, 1_000);
    expect(c!.pause).toEqual({ ms: 2_000, from: 1_000 });
    expect(describeChange(c!)).toBe('join 1 → 2: Stable after 1500 ms, longest pause in effects 2000 ms');
    const [never] = pausesOf([{ what: 'join 2 → 3', at: 1_000 }], samples, 10_000, 1_000);
    expect(describeChange(never!)).toMatch(/^join 2 → 3: never Stable/);
  });
});

describe('scalingReport', () => {
  it('carries the curve, the join pauses and the rolling restarts as measured, per client', () => {
    const run: ScalingRun = {
      startedAt: '2026-12-02T02:00:00.000Z',
      durationMs: 1,
      machine: { cpus: 2, node: 'v20', loadavg: [3, 2, 1] },
      pacedRate: 150,
      drains: [
        {
          partitions: 6,
          instances: 1,
          events: 20_000,
          elapsedMs: 10_000,
          throughput: 2_000,
          vsOne: 1,
          correct: true,
        },
        {
          partitions: 6,
          instances: 2,
          events: 20_000,
          elapsedMs: 9_000,
          throughput: 2_222,
          vsOne: 1.11,
          correct: false,
        },
      ],
      joins: [
        { partitions: 12, what: 'join 1 → 2', stableMs: 3_456, pauseMs: 2_345, normalGapMs: 300 },
        {
          client: 'platformatic',
          partitions: 12,
          what: 'join 1 → 2',
          stableMs: 1_234,
          pauseMs: 345,
          normalGapMs: 250,
        },
      ],
      rolling: [
        {
          variant: 'defaults, SIGTERM',
          steps: [
            { stepMs: 7_000, pauseMs: 4_000 },
            { stepMs: null, pauseMs: 5_000 },
          ],
          totalMs: 7_000,
          totalPauseMs: 9_000,
          correct: true,
        },
      ],
      notes: ['a joining instance did not start; started it again'],
    };
    const md = scalingReport(run);
    expect(md).toContain('| kafkajs (eager) | 6 | 2 | 20000 | 9.0 | 2222 | 1.11 | NO |');
    // A row without a client is from a run before both were measured: kafkajs's.
    expect(md).toContain('| kafkajs (eager) | 12 | join 1 → 2 | 3456 | 2345 | 300 |');
    expect(md).toContain('| platformatic (KIP-848) | 12 | join 1 → 2 | 1234 | 345 | 250 |');
    expect(md).toContain(
      '| kafkajs (eager) | defaults, SIGTERM | 7000, never | 4000, 5000 | 7000 | 9000 | yes |',
    );
    expect(md).toContain('- a joining instance did not start; started it again');
    expect(md).toContain('150 events/s');
  });
});
