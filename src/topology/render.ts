// Renders a topology for people: an aligned text listing for the terminal and a Mermaid flowchart
// for docs (`keyflow topology [--mermaid]`).
import { dlqTopicName } from './define';
import type { TopicSpec, Topology } from './types';

/** The Avro record's full name, or what a schema-less (dead-letter) topic carries. */
export function schemaName(t: TopicSpec): string {
  const avro = t.value?.avro;
  if (!avro) return 'raw bytes';
  const name = typeof avro.name === 'string' ? avro.name : String(avro.type ?? 'unnamed');
  return typeof avro.namespace === 'string' && !name.includes('.') ? `${avro.namespace}.${name}` : name;
}

function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map(
    (row) =>
      `  ${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')}`,
  );
}

function list(names: string[]): string {
  return names.length ? names.join(', ') : '-';
}

export function renderText(t: Topology): string {
  const lines = [`Topics (${t.topics.length})`];
  lines.push(
    ...table(
      t.topics.map((x) => [
        x.name,
        `${x.partitions} ${x.partitions === 1 ? 'partition' : 'partitions'}`,
        x.cleanupPolicy,
        `key ${x.key}`,
        `value ${schemaName(x)}`,
      ]),
    ),
  );
  lines.push('', `Stages (${t.stages.length})`);
  lines.push(
    ...table(
      t.stages.map((s) => [
        s.name,
        s.kind,
        `in: ${list(s.inputs)}`,
        `out: ${list(s.outputs)}`,
        `dlq: ${dlqTopicName(s.name)}`,
      ]),
    ),
  );
  return `${lines.join('\n')}\n`;
}

/** Mermaid labels are quoted; a double quote inside one must be an entity. */
function label(text: string): string {
  return `"${text.replace(/"/g, '#quot;')}"`;
}

/**
 * A left-to-right flowchart: topics are cylinders, stages are boxes, input → stage → output, and a
 * dashed edge from each stage to its dead-letter topic. Node ids are generated because topic names
 * contain characters ('.', '-') that Mermaid ids do not accept everywhere.
 */
export function renderMermaid(t: Topology): string {
  const lines = ['flowchart LR'];
  const topicIds = new Map<string, string>();
  const topicId = (name: string): string => {
    let id = topicIds.get(name);
    if (id === undefined) {
      id = `t${topicIds.size}`;
      topicIds.set(name, id);
      lines.push(`  ${id}[(${label(name)})]`);
    }
    return id;
  };
  for (const x of t.topics) topicId(x.name);
  const edges: string[] = [];
  t.stages.forEach((s, i) => {
    const id = `s${i}`;
    lines.push(`  ${id}[${label(`${s.name} (${s.kind})`)}]`);
    for (const input of s.inputs) edges.push(`  ${topicId(input)} --> ${id}`);
    for (const output of s.outputs) edges.push(`  ${id} --> ${topicId(output)}`);
    edges.push(`  ${id} -.->|dead letter| ${topicId(dlqTopicName(s.name))}`);
  });
  return `${[...lines, ...edges].join('\n')}\n`;
}
