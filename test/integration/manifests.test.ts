// deploy/kubernetes/ and docker-compose.yml checked against the real schemas by tools/manifest-check
// (strict decoding into the Kubernetes API and KEDA Go types; compose-go's loader with the Compose spec
// schema), which also proves it refuses known-bad fixtures; then what the manifests must say about Keyflow.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { appTopology } from '../../src/app/topology';
import { DEFAULT_KAFKA_VERSION } from '../../src/config/schema';
import { groupIdFor } from '../../src/topology/names';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { manifestCheckBinary } = require('../../scripts/manifest-check.js') as {
  manifestCheckBinary: () => string;
};

const root = path.join(__dirname, '..', '..');
const k8sDir = path.join(root, 'deploy', 'kubernetes');
const fixtures = path.join(__dirname, 'fixtures', 'manifests');
const manifests = fs
  .readdirSync(k8sDir)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => path.join(k8sDir, f));

function check(...args: string[]): { status: number | null; out: string } {
  const res = spawnSync(manifestCheckBinary(), args, { encoding: 'utf8' });
  return { status: res.status, out: `${res.stdout}${res.stderr}` };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = { kind: string; metadata: { name: string }; spec: any };
function docs(): Doc[] {
  const res = check('json', ...manifests);
  expect(res.status).toBe(0);
  return JSON.parse(res.out) as Doc[];
}
const byKind = (kind: string): Doc => {
  const found = docs().filter((d) => d.kind === kind);
  expect(found).toHaveLength(1);
  return found[0]!;
};

test('every Kubernetes manifest passes schema validation', () => {
  expect(manifests.length).toBeGreaterThanOrEqual(5);
  const res = check('kubernetes', ...manifests);
  expect(res.out).toContain(`ok kubernetes: ${manifests.length} file(s)`);
  expect(res.status).toBe(0);
});

test('docker-compose.yml passes the Compose parser', () => {
  const res = check('compose', path.join(root, 'docker-compose.yml'));
  expect(res.out).toContain('ok compose');
  expect(res.status).toBe(0);
});

test.each([
  ['bad-deployment.yaml', /unknown field "terminationGracePeriod"/],
  ['bad-types.yaml', /cannot unmarshal string .*spec\.ports\.port/],
  ['bad-scaledobject.yaml', /unknown field "maxReplicas"/],
])('the validator refuses the known-bad %s', (file, why) => {
  const res = check('kubernetes', path.join(fixtures, file));
  expect(res.status).toBe(1);
  expect(res.out).toMatch(why);
});

test('the Compose parser refuses a known-bad compose file', () => {
  const res = check('compose', path.join(fixtures, 'bad-compose.yml'));
  expect(res.status).toBe(1);
  expect(res.out).toMatch(/Additional property port is not allowed/);
});

test('the Deployment probes /readyz and /healthz, takes the admin token from a Secret and outlasts the drain', () => {
  const pod = byKind('Deployment').spec.template.spec;
  const c = pod.containers[0];
  expect(c.readinessProbe.httpGet).toMatchObject({ path: '/readyz', port: 'http' });
  expect(c.livenessProbe.httpGet).toMatchObject({ path: '/healthz', port: 'http' });
  const env = new Map<string, { value?: string; valueFrom?: unknown }>(
    c.env.map((e: { name: string }) => [e.name, e]),
  );
  expect(env.get('KEYFLOW_ADMIN_TOKEN')?.valueFrom).toEqual({
    secretKeyRef: { name: 'keyflow', key: 'KEYFLOW_ADMIN_TOKEN' },
  });
  expect(env.get('ADMIN_HOST')?.value).toBe('127.0.0.1');
  const drainMs = Number(env.get('KEYFLOW_INFRA_RETRY_BUDGET_MS')?.value);
  expect(drainMs).toBeGreaterThan(0);
  expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(drainMs);
  // Liveness waits for the startup probe, which must outlast the start-up wait for the services.
  expect(c.startupProbe.httpGet).toMatchObject({ path: '/healthz', port: 'http' });
  const startupWaitMs = Number(env.get('KEYFLOW_STARTUP_WAIT_MS')?.value);
  expect(startupWaitMs).toBeGreaterThan(0);
  expect(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold * 1000).toBeGreaterThan(
    startupWaitMs,
  );
  expect(byKind('Secret').metadata.name).toBe('keyflow');
});

test('the public Service exposes only the http port, never the admin listener', () => {
  const svc = byKind('Service');
  const pod = byKind('Deployment').spec.template.spec;
  const adminPort = Number(
    pod.containers[0].env.find((e: { name: string }) => e.name === 'ADMIN_PORT').value,
  );
  for (const p of svc.spec.ports) {
    expect(p.targetPort).not.toBe('admin');
    expect(p.targetPort).not.toBe(adminPort);
  }
  expect(svc.spec.ports.map((p: { targetPort: unknown }) => p.targetPort)).toEqual(['http']);
  expect(byKind('PodDisruptionBudget').spec.selector.matchLabels).toEqual(svc.spec.selector);
});

test('the ScaledObject has one kafka trigger per stage group, capped at the partition count', () => {
  const so = byKind('ScaledObject');
  const topo = appTopology();
  const partitions = new Map(topo.topics.map((t) => [t.name, t.partitions]));
  const triggers = so.spec.triggers as { type: string; metadata: Record<string, string> }[];
  // The groups the deployment's pods join: its KEYFLOW_APPLICATION_ID prefixes each stage's name.
  const pod = byKind('Deployment').spec.template.spec;
  const appId =
    pod.containers[0].env.find((e: { name: string }) => e.name === 'KEYFLOW_APPLICATION_ID')?.value ?? '';
  const groupOf = (s: { name: string }) => groupIdFor(appId, s.name);
  expect(triggers.map((t) => t.metadata.consumerGroup).sort()).toEqual(topo.stages.map(groupOf).sort());
  let cap = Infinity;
  for (const t of triggers) {
    const stage = topo.stages.find((s) => groupOf(s) === t.metadata.consumerGroup)!;
    expect(t.type).toBe('kafka');
    expect(stage.inputs).toEqual([t.metadata.topic]);
    expect(Number(t.metadata.lagThreshold)).toBeGreaterThan(0);
    expect(Number(t.metadata.activationLagThreshold)).toBeGreaterThan(0);
    expect(t.metadata.allowIdleConsumers).toBe('false');
    cap = Math.min(cap, partitions.get(t.metadata.topic!)!);
  }
  expect(so.spec.maxReplicaCount).toBe(cap);
  expect(so.spec.scaleTargetRef.name).toBe(byKind('Deployment').metadata.name);
});

test.each(['docker-compose.yml', 'test/setup/containers.ts'])(
  '%s runs the Kafka release the local stack defaults to',
  (file) => {
    const text = fs.readFileSync(path.join(root, file), 'utf8');
    const images = [...text.matchAll(/apache\/kafka:([\w.-]+)/g)].map((m) => m[1]);
    expect(images).toEqual([DEFAULT_KAFKA_VERSION]);
    // Kafka 4 is KRaft only: a ZooKeeper setting would be ignored or refused.
    expect(text).not.toMatch(/ZOOKEEPER/);
  },
);
