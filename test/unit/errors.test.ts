import { Metadata, status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { GfsError, fromServiceError } from '../../src/common/errors.js';

describe('errors across the wire', () => {
  it('keeps the POSIX name through a gRPC status', () => {
    const sent = new GfsError('ENOTEMPTY', 'directory not empty: /d').toServiceError();
    const back = fromServiceError({ ...sent, message: String(sent.details) });
    expect(back.code).toBe('ENOTEMPTY');
    expect(back.errno).toBe(39);
    expect(back.message).toContain('/d');
  });

  it('maps a bare transport status to a sensible errno and marks it retryable', () => {
    const e = fromServiceError({ code: status.UNAVAILABLE, details: 'connect ECONNREFUSED', metadata: new Metadata() });
    expect(e.code).toBe('EHOSTDOWN');
    expect(e.retryable).toBe(true);
    expect(fromServiceError({ code: status.NOT_FOUND, details: 'x', metadata: new Metadata() }).retryable).toBe(false);
  });
});
