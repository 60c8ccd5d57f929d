// Authentication of `/customers/{customerId}/...` routes: `Authorization: Bearer <key>`, and the key must
// belong to that very customer. Runs on request, before the body is read; a refusal says nothing about
// whether the customer or anything under it exists.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from 'mongodb';
import { customerOfKey } from './keys';

function refuse(reply: FastifyReply, status: 401 | 403, code: string, message: string) {
  if (status === 401) void reply.header('www-authenticate', 'Bearer');
  return reply.status(status).send({ error: { code, message } });
}

export function customerAuth(db: Db) {
  return async function authenticate(req: FastifyRequest, reply: FastifyReply) {
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!m)
      return refuse(reply, 401, 'UNAUTHORIZED', 'send the customer API key as "Authorization: Bearer <key>"');
    const owner = await customerOfKey(db, m[1]!);
    if (owner === undefined) return refuse(reply, 401, 'UNAUTHORIZED', 'the API key is not valid');
    const wanted = (req.params as { customerId?: unknown }).customerId;
    if (owner !== wanted)
      return refuse(reply, 403, 'FORBIDDEN', 'the API key does not grant access to this customer');
  };
}
