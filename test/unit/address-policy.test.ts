// The address policy refuses every loopback, private, link-local, metadata and otherwise non-public
// address in both families, including IPv6 spellings that carry an IPv4 address, lets public
// addresses through, and lets an allowed range through although private.
import { hostAllowed, parseCidr, refusedAddress } from '../../src/batches/address-policy';
import { redactOrigin } from '../../src/batches/redact';

test.each([
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['0.0.0.0', 'this-network'],
  ['10.1.2.3', 'private'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['192.168.1.1', 'private'],
  ['100.64.0.1', 'shared (carrier-grade NAT)'],
  ['100.100.100.200', 'shared (carrier-grade NAT)'],
  ['169.254.169.254', 'link-local (cloud metadata)'],
  ['224.0.0.1', 'multicast'],
  ['255.255.255.255', 'reserved'],
  ['::1', 'loopback'],
  ['::', 'unspecified'],
  ['::ffff:127.0.0.1', 'loopback'],
  ['::ffff:7f00:1', 'loopback'],
  ['::ffff:169.254.169.254', 'link-local (cloud metadata)'],
  ['::ffff:10.0.0.1', 'private'],
  ['64:ff9b::a9fe:a9fe', 'link-local (cloud metadata)'],
  ['2002:7f00:1::', 'loopback'],
  ['64:ff9b::a00:1', 'private'],
  ['64:ff9b::7f00:1', 'loopback'],
  ['2002:c0a8:101::1', 'private'],
  ['2002:a9fe:a9fe::', 'link-local (cloud metadata)'],
  // IPv4-translated (::ffff:0:0:0/96) is judged by its IPv4 address too.
  ['::ffff:0:7f00:1', 'loopback'],
  ['::ffff:0:a9fe:a9fe', 'link-local (cloud metadata)'],
  ['::ffff:0:10.0.0.1', 'private'],
  // The rest of the special-purpose registry's ranges that no public host is in.
  ['64:ff9b:1::1', 'local-use NAT64'],
  ['64:ff9b:1:ffff::808:808', 'local-use NAT64'],
  ['::1:0:0:1', 'reserved'],
  ['100:0:0:1::1', 'dummy prefix'],
  ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'IETF protocol assignments (Teredo, benchmarking, ORCHID)'],
  ['2001:2::1', 'IETF protocol assignments (Teredo, benchmarking, ORCHID)'],
  ['2001:db8::1', 'documentation'],
  ['3fff::1', 'documentation'],
  ['5f00::1', 'segment routing'],
  ['192.0.2.1', 'documentation'],
  ['198.51.100.7', 'documentation'],
  ['203.0.113.9', 'documentation'],
  ['fc00::1', 'unique-local (private)'],
  ['fd00:ec2::254', 'unique-local (private)'],
  ['fe80::1', 'link-local'],
  ['FE80::1%eth0', 'link-local'],
  ['febf:ffff::1', 'link-local'],
  ['ff02::1', 'multicast'],
])('%s is refused as %s', (ip, why) => {
  expect(refusedAddress(ip)).toBe(why);
});

test.each([
  '8.8.8.8',
  '93.184.216.34',
  '172.32.0.1',
  '100.128.0.1',
  '2606:4700::1111',
  '::ffff:8.8.8.8',
  '::ffff:0:8.8.8.8',
  '64:ff9b::808:808',
  '2002:808:808::1',
  '2001:4860:4860::8888',
])('%s is public and allowed', (ip) => {
  expect(refusedAddress(ip)).toBeNull();
});

test('an allowed range lets a private address through, and only that range', () => {
  const allow = [parseCidr('10.1.0.0/16'), parseCidr('::1')];
  expect(refusedAddress('10.1.200.7', allow)).toBeNull();
  expect(refusedAddress('10.2.0.1', allow)).toBe('private');
  expect(refusedAddress('::1', allow)).toBeNull();
  expect(refusedAddress('::ffff:10.1.0.9', allow)).toBeNull();
  expect(refusedAddress('127.0.0.1', allow)).toBe('loopback');
});

test('bad ranges and non-addresses are refused', () => {
  expect(() => parseCidr('10.0.0.0/33')).toThrow(/prefix length/);
  expect(() => parseCidr('example.com')).toThrow(/not an address/);
  expect(() => parseCidr('10.0.0.0/8/1')).toThrow(/not an address/);
  expect(refusedAddress('localhost')).toBe('not an IP address');
});

test('the host allow-list matches exact names and subdomains of *.entries only', () => {
  const list = ['cdn.example.com', '*.assets.example'];
  expect(hostAllowed('cdn.example.com', list)).toBe(true);
  expect(hostAllowed('CDN.example.com.', list)).toBe(true);
  expect(hostAllowed('a.assets.example', list)).toBe(true);
  expect(hostAllowed('assets.example', list)).toBe(false);
  expect(hostAllowed('evilassets.example', list)).toBe(false);
  expect(hostAllowed('cdn.example.com.evil.net', list)).toBe(false);
  expect(hostAllowed('anything', [])).toBe(true);
});

test.each([
  ['https://user:pw@cdn.example.com/a.png?sig=1#x', 'https://***@cdn.example.com/a.png?…'],
  ['http://cdn.example.com:8080/a.png', 'http://cdn.example.com:8080/a.png'],
  ['file:///srv/assets/a.png', 'file:///srv/assets/a.png'],
  ['not a url //user:pw@host/x?token=1', 'not a url //***@host/x?…'],
])('redactOrigin(%s) keeps no credentials or query', (origin, shown) => {
  expect(redactOrigin(origin)).toBe(shown);
});
