// What the local stack writes for Kafka 4.x versus 3.9.x: jars, logging, quorum settings, storage format,
// and the rules that keep one line from running on data another line formatted.
import {
  formatArgs,
  formatMismatch,
  javaMajor,
  kafkaLine,
  logConfig,
  minimumJava,
  runtimePom,
  serverProperties,
} from '../../src/services/kafka-config';

const layout = { port: 39092, controllerPort: 39093, dataDir: '/tmp/k/data/kafka' };

function props(version: string, l: Parameters<typeof serverProperties>[1] = layout): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of serverProperties(version, l).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

test('versions map to their line, and anything else is a programming error', () => {
  expect(kafkaLine('4.4.0')).toBe('4');
  expect(kafkaLine('4.0.1')).toBe('4');
  expect(kafkaLine('3.9.2')).toBe('3.9');
  expect(() => kafkaLine('3.8.1')).toThrow(RangeError);
  expect(() => kafkaLine('5.0.0')).toThrow(RangeError);
});

test('4.x runs a dynamic quorum of one; 3.9 keeps the static voters its existing data dirs were made with', () => {
  const four = props('4.4.0');
  expect(four['controller.quorum.bootstrap.servers']).toBe('127.0.0.1:39093');
  expect(four['controller.quorum.voters']).toBeUndefined();
  const old = props('3.9.2');
  expect(old['controller.quorum.voters']).toBe('1@127.0.0.1:39093');
  expect(old['controller.quorum.bootstrap.servers']).toBeUndefined();
  // Everything else is the same single combined node on both lines.
  for (const p of [four, old]) {
    expect(p['process.roles']).toBe('broker,controller');
    expect(p.listeners).toBe('PLAINTEXT://127.0.0.1:39092,CONTROLLER://127.0.0.1:39093');
    expect(p['log.dirs']).toBe(layout.dataDir);
    expect(p['offsets.topic.replication.factor']).toBe('1');
    expect(p['auto.create.topics.enable']).toBe('false');
  }
  expect(Object.keys(four).length).toBe(Object.keys(old).length);
});

test('a proxied listener is advertised at the proxy port, and the main listener stays as it was', () => {
  for (const version of ['4.4.0', '3.9.2']) {
    const p = props(version, { ...layout, proxied: { port: 39094, advertisedPort: 39095 } });
    expect(p.listeners).toBe(
      'PLAINTEXT://127.0.0.1:39092,PROXIED://127.0.0.1:39094,CONTROLLER://127.0.0.1:39093',
    );
    // A client that bootstraps through the proxy is told to come back through it, never to 39094.
    expect(p['advertised.listeners']).toBe('PLAINTEXT://127.0.0.1:39092,PROXIED://127.0.0.1:39095');
    expect(p['listener.security.protocol.map']).toBe(
      'PLAINTEXT:PLAINTEXT,PROXIED:PLAINTEXT,CONTROLLER:PLAINTEXT',
    );
    expect(p['inter.broker.listener.name']).toBe('PLAINTEXT');
    expect(props(version)['advertised.listeners']).toBe('PLAINTEXT://127.0.0.1:39092');
  }
});

test('only 4.x formats with --standalone', () => {
  expect(formatArgs('4.4.0', 'id', '/p')).toEqual([
    'format',
    '--ignore-formatted',
    '-t',
    'id',
    '-c',
    '/p',
    '--standalone',
  ]);
  expect(formatArgs('3.9.2', 'id', '/p')).not.toContain('--standalone');
});

test('4.x logs through log4j2 with an XML config; 3.9 through reload4j with properties', () => {
  const four = logConfig('4.4.0');
  expect(four.file).toBe('log4j2.xml');
  expect(four.jvmFlag('/c/log4j2.xml')).toBe('-Dlog4j2.configurationFile=/c/log4j2.xml');
  expect(four.content).toContain('<Root level="info">');
  expect(four.content).toContain(
    '<Logger name="org.apache.kafka.common.config.AbstractConfig" level="warn"/>',
  );
  const old = logConfig('3.9.2');
  expect(old.file).toBe('log4j.properties');
  expect(old.jvmFlag('/c/log4j.properties')).toBe('-Dlog4j.configuration=file:/c/log4j.properties');
  expect(old.content).toContain('log4j.logger.org.apache.kafka.common.config.AbstractConfig=WARN');
});

test('the POM brings the slf4j binding each line needs, and only that one', () => {
  const four = runtimePom('4.4.0');
  expect(four).toContain('<artifactId>kafka_2.13</artifactId><version>4.4.0</version>');
  expect(four).toContain('<artifactId>log4j-slf4j-impl</artifactId>');
  expect(four).not.toContain('reload4j');
  const old = runtimePom('3.9.2');
  expect(old).toContain('<artifactId>kafka_2.13</artifactId><version>3.9.2</version>');
  expect(old).toContain('<artifactId>slf4j-reload4j</artifactId>');
  expect(old).toContain('<groupId>ch.qos.logback</groupId>');
  expect(old).not.toContain('log4j-slf4j-impl');
});

test('data formatted by one line is refused to the other, with both ways out', () => {
  expect(formatMismatch(undefined, '4.4.0')).toBeUndefined();
  expect(formatMismatch('4.3.2', '4.4.0')).toBeUndefined();
  expect(formatMismatch('3.9.1', '3.9.2')).toBeUndefined();
  const up = formatMismatch('3.9.2', '4.4.0');
  expect(up).toMatch(/formatted by Kafka 3\.9\.2 and cannot be run as 4\.4\.0/);
  expect(up).toContain('KEYFLOW_KAFKA_VERSION=3.9.2');
  expect(up).toContain('keyflow services reset');
  expect(formatMismatch('4.4.0', '3.9.2')).toContain('KEYFLOW_KAFKA_VERSION=4.4.0');
});

test('java -version output gives the major version; Kafka 4 brokers want 17', () => {
  expect(javaMajor('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment')).toBe(17);
  expect(javaMajor('java version "1.8.0_402"')).toBe(8);
  expect(javaMajor('openjdk version "21" 2023-09-19')).toBe(21);
  expect(javaMajor('no java here')).toBeUndefined();
  expect(minimumJava('4.4.0')).toBe(17);
  expect(minimumJava('3.9.2')).toBe(8);
});
