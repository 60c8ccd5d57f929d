// Named-query templates map path arguments (p1..p9) or literals onto image filters; the batch filter
// takes comma-delimited ids in one path element. Bad templates and bad arguments are refused by name.
import { parseTemplate, resolveTemplate } from '../../src/batches/named-queries';

test('path arguments and literals map onto filters', () => {
  const t = parseTemplate('batch=p1&mediaType=image/png&status=p2');
  expect(t.arity).toBe(2);
  expect(resolveTemplate(t, ['1234,5555,9999', 'error'])).toEqual({
    batchIds: [1234, 5555, 9999],
    mediaType: 'image/png',
    status: 'error',
  });
});

test('repeated batch ids collapse', () => {
  expect(resolveTemplate(parseTemplate('batch=p1'), ['7,7,8'])).toEqual({ batchIds: [7, 8] });
});

test.each([
  ['unknown field', 'colour=p1', /unknown field "colour"/],
  ['no value', 'batch=', /not field=value/],
  ['repeated field', 'batch=p1&batch=p2', /given twice/],
  ['argument out of range', 'batch=p10', /out of range/],
  ['bad literal', 'status=done', /status must be one of/],
  ['operator-shaped field', '$where=p1', /unknown field/],
])('template refused: %s', (_name, template, message) => {
  expect(() => parseTemplate(template)).toThrow(message);
});

test.each([
  ['a non-numeric batch', ['12,abc'], /batch "abc" is not a batch id/],
  ['an empty batch element', ['12,,13'], /is not a batch id/],
  ['a negative batch', ['-4'], /is not a batch id/],
  ['a fractional batch', ['1.5'], /is not a batch id/],
  ['too many arguments', ['1', '2'], /takes 1 path argument/],
  ['too few arguments', [], /takes 1 path argument/],
])('argument refused: %s', (_name, args, message) => {
  expect(() => resolveTemplate(parseTemplate('batch=p1'), args)).toThrow(message);
});
