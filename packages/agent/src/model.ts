/**
 * The chat model of each wire format, talking to the model endpoint through the sandbox's HTTP(S)
 * proxy when HTTP_PROXY/HTTPS_PROXY are set (directly otherwise).
 */
import { ChatAnthropic } from '@langchain/anthropic';
import { ChatOpenAICompletions, ChatOpenAIResponses } from '@langchain/openai';
import { EnvHttpProxyAgent, fetch as undiciFetch } from 'undici';
import type { ModelApi } from './args.js';

export type Env = Record<string, string | undefined>;
type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

const first = (...values: Array<string | undefined>) => values.find((v) => v !== undefined && v !== '');

/** The proxy settings of `env` (upper case first, as curl reads them), or undefined when there is none. */
export function proxySettings(env: Env): { httpProxy?: string; httpsProxy?: string; noProxy?: string } | undefined {
  const httpProxy = first(env.HTTP_PROXY, env.http_proxy);
  const httpsProxy = first(env.HTTPS_PROXY, env.https_proxy);
  if (!httpProxy && !httpsProxy) return undefined;
  const noProxy = first(env.NO_PROXY, env.no_proxy);
  return { ...(httpProxy ? { httpProxy } : {}), ...(httpsProxy ? { httpsProxy } : {}), noProxy: noProxy ?? '' };
}

/**
 * The fetch the model clients use: through the proxy of `env` if it names one, and without the
 * placeholder credential headers when the endpoint takes no key.
 */
export function modelFetch(env: Env, withKey: boolean): Fetch {
  const proxy = proxySettings(env);
  const dispatcher = proxy ? new EnvHttpProxyAgent(proxy) : undefined;
  const base: Fetch = dispatcher
    ? (input, init) => undiciFetch(input as never, { ...(init as object), dispatcher } as never) as unknown as Promise<Response>
    : fetch;
  if (withKey) return base;
  return (input, init) => {
    const headers = new Headers(init?.headers);
    headers.delete('authorization');
    headers.delete('x-api-key');
    return base(input, { ...init, headers });
  };
}

export interface ModelSettings {
  api: ModelApi;
  model: string;
  endpoint: string;
  apiKey?: string;
  env: Env;
}

/** The `gen_ai.system` of an API. */
export function genAiSystem(api: ModelApi): string {
  return api === 'messages' ? 'anthropic' : 'openai';
}

export function createModel(s: ModelSettings) {
  const fetch = modelFetch(s.env, s.apiKey !== undefined);
  // The SDKs refuse to start without a key; an endpoint that takes none gets a placeholder that modelFetch drops.
  const apiKey = s.apiKey ?? 'none';
  const endpoint = s.endpoint.replace(/\/+$/, '');
  if (s.api === 'messages') {
    // The Anthropic SDK appends /v1/messages itself: a base URL given with /v1 (as Claude Code takes it too) loses it.
    return new ChatAnthropic({
      model: s.model,
      apiKey,
      anthropicApiUrl: endpoint.replace(/\/v1$/, ''),
      maxTokens: 8192,
      maxRetries: 2,
      clientOptions: { fetch },
    });
  }
  const fields = { model: s.model, apiKey, maxRetries: 2, configuration: { baseURL: endpoint, fetch } };
  return s.api === 'responses' ? new ChatOpenAIResponses(fields) : new ChatOpenAICompletions(fields);
}
