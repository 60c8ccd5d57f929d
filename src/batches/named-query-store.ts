// Stored named queries: one template per customer and name; parsed when stored, so a bad one is a 400 then.
import type { Db } from 'mongodb';
import { COLLECTIONS } from './names';
import { parseTemplate, type ParsedTemplate } from './named-queries';

interface NamedQueryDoc {
  _id: string;
  customerId: string;
  name: string;
  template: string;
  updated: Date;
}

const namedQueriesOf = (db: Db) => db.collection<NamedQueryDoc>(COLLECTIONS.namedQueries);

export async function putNamedQuery(
  db: Db,
  customerId: string,
  name: string,
  template: string,
  now: Date,
): Promise<ParsedTemplate> {
  const parsed = parseTemplate(template);
  await namedQueriesOf(db).updateOne(
    { _id: `${customerId}/${name}` },
    { $set: { customerId, name, template, updated: now } },
    { upsert: true },
  );
  return parsed;
}

export async function getNamedQuery(
  db: Db,
  customerId: string,
  name: string,
): Promise<ParsedTemplate | undefined> {
  const doc = await namedQueriesOf(db).findOne({ _id: `${customerId}/${name}` });
  return doc ? parseTemplate(doc.template) : undefined;
}
