// Named-query templates: `batch=p1&mediaType=image/png` maps path arguments (p1, p2, ...) or literal
// values onto image filters. Parsing and resolving are pure; a bad template or argument is a 400.
import { z } from 'zod';
import { KeyflowError } from '../errors';
import { batchIdSchema, statusSchema, type AssetStatus } from './schemas';
import type { ImageMediaType } from './image-header';

export const NAMED_QUERY_FIELDS = ['batch', 'mediaType', 'status'] as const;
export type NamedQueryField = (typeof NAMED_QUERY_FIELDS)[number];

const MAX_ARGS = 9;
const MAX_BATCHES_PER_FILTER = 100;

export type TemplateSource = { arg: number } | { literal: string };

export interface ParsedTemplate {
  filters: { field: NamedQueryField; source: TemplateSource }[];
  /** How many path arguments the query takes (the highest pN used). */
  arity: number;
}

export interface ImageFilter {
  batchIds?: number[];
  mediaType?: ImageMediaType;
  status?: AssetStatus;
}

function invalid(message: string): KeyflowError {
  return new KeyflowError('VALIDATION_FAILED', message, { retriable: false });
}

/** Parses a template; refuses unknown fields, repeated fields and arguments beyond p9. */
export function parseTemplate(template: string): ParsedTemplate {
  const filters: ParsedTemplate['filters'] = [];
  let arity = 0;
  for (const part of template.split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0 || eq === part.length - 1) {
      throw invalid(`template: "${part}" is not field=value (e.g. batch=p1)`);
    }
    const field = part.slice(0, eq);
    const value = part.slice(eq + 1);
    if (!(NAMED_QUERY_FIELDS as readonly string[]).includes(field)) {
      throw invalid(`template: unknown field "${field}"; use ${NAMED_QUERY_FIELDS.join(', ')}`);
    }
    if (filters.some((f) => f.field === field)) throw invalid(`template: field "${field}" is given twice`);
    const arg = /^p(\d+)$/.exec(value);
    if (arg) {
      const n = Number(arg[1]);
      if (n < 1 || n > MAX_ARGS) throw invalid(`template: ${value} is out of range; use p1 to p${MAX_ARGS}`);
      arity = Math.max(arity, n);
      filters.push({ field: field as NamedQueryField, source: { arg: n } });
    } else {
      // Literals are checked now, so a stored template can never fail on its own values later.
      resolveValue(field as NamedQueryField, value, 'template');
      filters.push({ field: field as NamedQueryField, source: { literal: value } });
    }
  }
  return { filters, arity };
}

const mediaTypeSchema = z.enum(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

function resolveValue(field: NamedQueryField, raw: string, where: string): ImageFilter {
  if (field === 'batch') {
    const parts = raw.split(',');
    if (parts.length > MAX_BATCHES_PER_FILTER) {
      throw invalid(`${where}: at most ${MAX_BATCHES_PER_FILTER} batch ids per filter`);
    }
    const ids = parts.map((p) => {
      const r = batchIdSchema.safeParse(p.trim() === '' ? undefined : p.trim());
      if (!r.success || !/^\d+$/.test(p.trim())) throw invalid(`${where}: batch "${p}" is not a batch id`);
      return r.data;
    });
    return { batchIds: [...new Set(ids)] };
  }
  if (field === 'mediaType') {
    const r = mediaTypeSchema.safeParse(raw);
    if (!r.success) throw invalid(`${where}: mediaType must be one of ${mediaTypeSchema.options.join(', ')}`);
    return { mediaType: r.data };
  }
  const r = statusSchema.safeParse(raw);
  if (!r.success) throw invalid(`${where}: status must be one of ${statusSchema.options.join(', ')}`);
  return { status: r.data };
}

/** The image filter for one call: exactly `arity` path arguments, each checked for its field. */
export function resolveTemplate(parsed: ParsedTemplate, args: string[]): ImageFilter {
  if (args.length !== parsed.arity) {
    throw invalid(`this named query takes ${parsed.arity} path argument(s), got ${args.length}`);
  }
  let filter: ImageFilter = {};
  for (const f of parsed.filters) {
    const raw = 'arg' in f.source ? args[f.source.arg - 1]! : f.source.literal;
    const where = 'arg' in f.source ? `argument ${f.source.arg} (${f.field})` : `template ${f.field}`;
    filter = { ...filter, ...resolveValue(f.field, raw, where) };
  }
  return filter;
}
