// kafkajs 2.2.4 (its last release) schedules its request queue's check with a delay computed from a
// timestamp that starts at 0, so the delay is minus the epoch (kafkajs issue #1751, fixes never merged).
// Node 20 clamped it to 1 ms silently; Node 24 clamps it the same way but prints a
// TimeoutNegativeWarning on stderr once per process. Behaviour is unchanged, so that one warning is
// dropped here, where kafkajs is loaded; every other warning goes through as before.
const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
let installed = false;

/** True for the one warning kafkajs's negative delay causes; exported for its test. */
export function isKafkajsNegativeDelay(warning: unknown, typeOrOptions: unknown): boolean {
  const type =
    typeof typeOrOptions === 'string'
      ? typeOrOptions
      : (typeOrOptions as { type?: unknown } | undefined)?.type;
  const name = warning instanceof Error ? warning.name : type;
  return name === 'TimeoutNegativeWarning';
}

export function dropKafkajsNegativeDelayWarning(): void {
  if (installed) return;
  installed = true;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    if (isKafkajsNegativeDelay(warning, rest[0])) return;
    emitWarning(warning, ...rest);
  }) as typeof process.emitWarning;
}
