// What stops a reader schema from reading data written with a writer schema, named field by field.
// The registry answers "compatible or not" with paths like `/fields/1`; avsc's schema resolution (the
// same one the codec decodes with) is asked field by field here so a producer reads the field's name.
import avro from 'avsc';

/** The registry's compatibility levels (Confluent names; Apicurio's ccompat API uses the same). */
export const COMPATIBILITY_LEVELS = [
  'NONE',
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
] as const;
export type CompatibilityLevel = (typeof COMPATIBILITY_LEVELS)[number];

/**
 * One reason a reader cannot read a writer's data. `field` is a dotted path; '' is the whole value.
 * `missing`: the reader needs the field, has no default for it, and the writer's records lack it.
 */
export interface ReadProblem {
  field: string;
  kind: 'missing' | 'type' | 'other';
  problem: string;
}

/** A break under a level: which way it fails, against which registered version. */
export interface Break extends ReadProblem {
  /** backward: the new schema cannot read records already written; forward: the registered one cannot read new records. */
  direction: 'backward' | 'forward';
  version: number;
}

function describe(t: avro.Type): string {
  if (t instanceof avro.types.UnwrappedUnionType || t instanceof avro.types.WrappedUnionType) {
    return t.types.map(describe).join(' | ');
  }
  if (t instanceof avro.types.ArrayType) return `array<${describe(t.itemsType)}>`;
  if (t instanceof avro.types.MapType) return `map<${describe(t.valuesType)}>`;
  if (t instanceof avro.types.LogicalType) return `${describe(t.underlyingType)} (${t.typeName})`;
  return t.name ?? t.typeName;
}

function resolves(reader: avro.Type, writer: avro.Type): string | undefined {
  try {
    reader.createResolver(writer);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

function walk(reader: avro.Type, writer: avro.Type, path: string, out: ReadProblem[]): void {
  const failure = resolves(reader, writer);
  if (failure === undefined) return;
  if (reader instanceof avro.types.RecordType && writer instanceof avro.types.RecordType) {
    const before = out.length;
    for (const field of reader.fields) {
      const name = path ? `${path}.${field.name}` : field.name;
      const written = [field.name, ...field.aliases]
        .map((n): avro.types.Field | undefined => writer.field(n))
        .find(Boolean);
      if (written) walk(field.type, written.type, name, out);
      else if (field.defaultValue() === undefined) {
        out.push({
          field: name,
          kind: 'missing',
          problem: 'required by the reader and absent from the writer',
        });
      }
    }
    // Every field resolves, yet the records do not: the record itself changed (its name, say).
    if (out.length === before) out.push({ field: path, kind: 'other', problem: failure });
    return;
  }
  out.push({
    field: path,
    kind: 'type',
    problem: `written as ${describe(writer)}, read as ${describe(reader)}`,
  });
}

/** Why a consumer on `reader` cannot decode records written with `writer`; empty when it can. */
export function readProblems(reader: object, writer: object): ReadProblem[] {
  const out: ReadProblem[] = [];
  walk(avro.Type.forSchema(reader as avro.Schema), avro.Type.forSchema(writer as avro.Schema), '', out);
  return out;
}

/**
 * The breaks of `next` against the registered versions (oldest first) under `level`: BACKWARD asks
 * whether the new schema reads the latest version's records, FORWARD whether the latest reads the new
 * one's, FULL both; the _TRANSITIVE levels ask it of every version.
 */
export function breaksUnder(
  level: CompatibilityLevel,
  next: object,
  registered: { version: number; schema: object }[],
): Break[] {
  if (level === 'NONE' || registered.length === 0) return [];
  const against = level.endsWith('_TRANSITIVE') ? registered : registered.slice(-1);
  const backward = level.startsWith('BACKWARD') || level.startsWith('FULL');
  const forward = level.startsWith('FORWARD') || level.startsWith('FULL');
  const out: Break[] = [];
  for (const { version, schema } of against) {
    if (backward) {
      for (const p of readProblems(next, schema)) out.push({ ...p, direction: 'backward', version });
    }
    if (forward) {
      for (const p of readProblems(schema, next)) out.push({ ...p, direction: 'forward', version });
    }
  }
  return out;
}
