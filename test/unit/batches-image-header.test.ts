// The image header parser knows PNG, JPEG (baseline and progressive, past APPn/DQT segments), GIF and
// the three WebP flavours from bytes alone, and says "no image" for text, truncated or zero-sized headers.
import { identifyImage } from '../../src/batches/image-header';
import { gif, jpeg, png, webpExtended, webpLossless, webpLossy } from '../scenarios/fixtures/images';

test.each([
  ['PNG', png(3, 2), 'image/png', 3, 2],
  ['baseline JPEG', jpeg(640, 480), 'image/jpeg', 640, 480],
  ['progressive JPEG', jpeg(1024, 77, 0xc2), 'image/jpeg', 1024, 77],
  ['GIF', gif(300, 200), 'image/gif', 300, 200],
  ['lossless WebP', webpLossless(5000, 1), 'image/webp', 5000, 1],
  ['lossy WebP', webpLossy(120, 90), 'image/webp', 120, 90],
  ['extended WebP', webpExtended(70000, 3), 'image/webp', 70000, 3],
])('%s: type and dimensions', (_name, bytes, mediaType, width, height) => {
  expect(identifyImage(bytes)).toEqual({ mediaType, width, height });
});

test.each([
  ['text', Buffer.from('hello, this is not an image at all')],
  ['empty', Buffer.alloc(0)],
  ['truncated PNG', png(3, 2).subarray(0, 20)],
  ['JPEG without a frame', Buffer.from([0xff, 0xd8, 0xff, 0xd9])],
  ['JPEG cut inside a segment', jpeg(10, 10).subarray(0, 30)],
  ['zero-width GIF', gif(0, 5)],
  ['RIFF that is not WebP', Buffer.concat([Buffer.from('RIFF\0\0\0\0WAVEfmt '), Buffer.alloc(20)])],
])('%s is not identified', (_name, bytes) => {
  expect(identifyImage(bytes)).toBeUndefined();
});

test('a JPEG whose DHT comes before the frame is still read (0xC4 is not a frame)', () => {
  const base = jpeg(33, 44);
  const dht = Buffer.from([0xff, 0xc4, 0, 5, 0, 0, 0]);
  const bytes = Buffer.concat([base.subarray(0, 2), dht, base.subarray(2)]);
  expect(identifyImage(bytes)).toEqual({ mediaType: 'image/jpeg', width: 33, height: 44 });
});

test('a header cut short inside a larger buffer is not read past the end of its view', () => {
  // The bytes after the cut are a valid rest of the header; a parser reading past the view would find them.
  const whole = png(3, 2);
  expect(identifyImage(whole.subarray(0, 20))).toBeUndefined();
  expect(identifyImage(gif(300, 200).subarray(0, 8))).toBeUndefined();
  expect(identifyImage(webpLossy(120, 90).subarray(0, 28))).toBeUndefined();
});
