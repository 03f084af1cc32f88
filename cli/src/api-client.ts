/** A small client for the broker's REST API; every failure becomes a HoopError with a code. */
import { HoopError, isErrorCode } from '@hoop/shared';

export class ApiClient {
  constructor(
    readonly brokerUrl: string,
    private readonly token: string | undefined,
    private readonly timeoutMs = 15_000,
  ) {}

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  delete<T>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = new URL(path, this.brokerUrl.endsWith('/') ? this.brokerUrl : `${this.brokerUrl}/`);
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          accept: 'application/json',
          ...(this.token === undefined ? {} : { authorization: `Bearer ${this.token}` }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new HoopError(
        'BROKER_UNREACHABLE',
        `cannot reach the broker at ${this.brokerUrl} (${cause})`,
      );
    }
    const text = await response.text();
    let value: unknown;
    try {
      value = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new HoopError(
        'BROKER_UNREACHABLE',
        `${this.brokerUrl} answered ${response.status} with something that is not JSON; is it a hoop broker?`,
      );
    }
    if (!response.ok) {
      const error = (
        value as { error?: { code?: unknown; message?: unknown; hint?: unknown } } | undefined
      )?.error;
      if (error !== undefined && isErrorCode(error.code) && typeof error.message === 'string') {
        throw new HoopError(
          error.code,
          error.message,
          typeof error.hint === 'string' ? { hint: error.hint } : undefined,
        );
      }
      throw new HoopError('INTERNAL', `the broker answered HTTP ${response.status}`);
    }
    return value as T;
  }
}
