// Which network addresses an asset fetch may connect to. Pure: the fetcher resolves the host itself and
// asks here about every address before it connects, so an API caller cannot make the service reach
// loopback, the private network or a cloud metadata endpoint (SSRF).
import { isIPv4, isIPv6 } from 'node:net';

/** An address range: v4 as a 32-bit number, v6 as a 128-bit bigint, with its prefix length. */
export interface Cidr {
  family: 4 | 6;
  base: bigint;
  bits: number;
}

function v4ToBig(ip: string): bigint {
  return ip.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function v6ToBig(ip: string): bigint {
  let text = ip.toLowerCase();
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  // A trailing dotted quad (::ffff:127.0.0.1) becomes two hextets.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = Number(v4ToBig(tail));
    text = `${text.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const missing = 8 - left.length - right.length;
  const groups = rest === undefined ? left : [...left, ...Array<string>(missing).fill('0'), ...right];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** Parses `10.0.0.0/8`, `fc00::/7` or a bare address (a /32 or /128). Throws on anything else. */
export function parseCidr(text: string): Cidr {
  const [ip, prefix, extra] = text.trim().split('/');
  if (ip === undefined || extra !== undefined) throw new Error(`"${text}" is not an address or CIDR`);
  const family = isIPv4(ip) ? 4 : isIPv6(ip) ? 6 : undefined;
  if (family === undefined) throw new Error(`"${text}" is not an address or CIDR`);
  const width = family === 4 ? 32 : 128;
  const bits = prefix === undefined ? width : Number(prefix);
  if (!/^\d+$/.test(prefix ?? String(width)) || bits > width) {
    throw new Error(`"${text}" has a prefix length outside 0..${width}`);
  }
  const value = family === 4 ? v4ToBig(ip) : v6ToBig(ip);
  const shift = BigInt(width - bits);
  return { family, base: (value >> shift) << shift, bits };
}

function contains(c: Cidr, family: 4 | 6, value: bigint): boolean {
  if (c.family !== family) return false;
  const shift = BigInt((family === 4 ? 32 : 128) - c.bits);
  return value >> shift === c.base >> shift;
}

const REFUSED_V4: [string, string][] = [
  ['0.0.0.0/8', 'this-network'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'shared (carrier-grade NAT)'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local (cloud metadata)'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'protocol assignments'],
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', '6to4 relay anycast (deprecated)'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
];
// The IANA IPv6 special-purpose registry's ranges that are not globally reachable. The forms that carry
// an IPv4 address (EMBEDS_V4) are judged as that address before these.
const REFUSED_V6: [string, string][] = [
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['64:ff9b:1::/48', 'local-use NAT64'],
  ['::/8', 'reserved'], // after the ranges inside it
  ['100::/64', 'discard'],
  ['100:0:0:1::/64', 'dummy prefix'],
  ['2001::/23', 'IETF protocol assignments (Teredo, benchmarking, ORCHID)'],
  ['2001:db8::/32', 'documentation'],
  ['3fff::/20', 'documentation'],
  ['5f00::/16', 'segment routing'],
  ['fc00::/7', 'unique-local (private)'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local'],
  ['ff00::/8', 'multicast'],
];
const RANGES = [...REFUSED_V4, ...REFUSED_V6].map(([c, why]) => ({ cidr: parseCidr(c), why }));

// IPv6 forms that carry an IPv4 address: it is judged as that address. (Local-use NAT64,
// 64:ff9b:1::/48, places it by a prefix length the network chose, so it is refused whole.)
const EMBEDS_V4 = [
  { cidr: parseCidr('::ffff:0:0/96'), at: 0n }, // IPv4-mapped
  { cidr: parseCidr('::ffff:0:0:0/96'), at: 0n }, // IPv4-translated (SIIT)
  { cidr: parseCidr('::/96'), at: 0n }, // IPv4-compatible (deprecated)
  { cidr: parseCidr('64:ff9b::/96'), at: 0n }, // NAT64
  { cidr: parseCidr('2002::/16'), at: 80n }, // 6to4: the v4 address follows the prefix
];

/**
 * Why an address may not be fetched from, or null when it may. `allow` lists ranges that are let through
 * even when private (an on-premises asset store); nothing else is.
 */
export function refusedAddress(ip: string, allow: readonly Cidr[] = []): string | null {
  const family = isIPv4(ip) ? 4 : isIPv6(ip) ? 6 : undefined;
  if (family === undefined) return 'not an IP address';
  const value = family === 4 ? v4ToBig(ip) : v6ToBig(ip);
  if (allow.some((c) => contains(c, family, value))) return null;
  if (family === 6) {
    for (const e of EMBEDS_V4) {
      if (contains(e.cidr, 6, value) && !(e.cidr.bits === 96 && e.at === 0n && value <= 1n)) {
        const v4 = (value >> e.at) & 0xffffffffn;
        const dotted = [24n, 16n, 8n, 0n].map((s) => String((v4 >> s) & 0xffn)).join('.');
        return refusedAddress(dotted, allow);
      }
    }
  }
  return RANGES.find((r) => contains(r.cidr, family, value))?.why ?? null;
}

/** Whether a host name is on the allow-list: exact names, or `*.example.com` for its subdomains. */
export function hostAllowed(host: string, allowList: readonly string[] | undefined): boolean {
  if (allowList === undefined || allowList.length === 0) return true;
  const h = host.toLowerCase().replace(/\.$/, '');
  return allowList.some((entry) => {
    const e = entry.toLowerCase();
    return e.startsWith('*.') ? h.endsWith(e.slice(1)) && h.length > e.length - 1 : h === e;
  });
}
