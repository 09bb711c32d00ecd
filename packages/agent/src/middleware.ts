/**
 * The runtime's middleware (langchain v1): the turn and tool budgets, one span per model and tool
 * call, and the events each call writes to stdout. Order in createAgent: budget, telemetry, events
 * (the first wraps the others).
 */
import { SpanKind } from '@opentelemetry/api';
import { createMiddleware, ToolMessage, type AIMessage } from 'langchain';
import type { EventSink } from './events.js';
import type { AgentTelemetry } from './telemetry.js';
import { capOutput, MAX_TOOL_OUTPUT } from './tools.js';

/** The agent used up a budget; the runtime stops with exit code 3. */
export class BudgetExceeded extends Error {
  override name = 'BudgetExceeded';
}

/** Where a run stands; the budget middleware records why it stopped, since errors thrown in middleware may arrive wrapped. */
export interface RunState {
  modelCalls: number;
  toolCalls: number;
  stopped?: BudgetExceeded;
}

export function budgetMiddleware(state: RunState, limits: { maxTurns: number; maxToolCalls?: number }) {
  return createMiddleware({
    name: 'AmeideBudget',
    wrapModelCall: (request, handler) => {
      if (state.modelCalls >= limits.maxTurns) {
        state.stopped = new BudgetExceeded(`stopped after ${state.modelCalls} model calls (maxTurns ${limits.maxTurns})`);
        throw state.stopped;
      }
      state.modelCalls++;
      return handler(request);
    },
    wrapToolCall: (request, handler) => {
      if (limits.maxToolCalls !== undefined && state.toolCalls >= limits.maxToolCalls) {
        state.stopped = new BudgetExceeded(`stopped after ${state.toolCalls} tool calls (maxToolCalls ${limits.maxToolCalls})`);
        throw state.stopped;
      }
      state.toolCalls++;
      return handler(request);
    },
  });
}

/** The model that answered (as the response says) and the tokens of one model call. */
export function usageOf(message: AIMessage, fallbackModel: string): { model: string; inputTokens: number; outputTokens: number } {
  const meta = (message.response_metadata ?? {}) as Record<string, unknown>;
  const model = [meta.model_name, meta.model].find((m): m is string => typeof m === 'string' && m !== '') ?? fallbackModel;
  return { model, inputTokens: message.usage_metadata?.input_tokens ?? 0, outputTokens: message.usage_metadata?.output_tokens ?? 0 };
}

export function telemetryMiddleware(telemetry: AgentTelemetry, settings: { model: string; system: string; serverAddress?: string }) {
  return createMiddleware({
    name: 'AmeideTelemetry',
    wrapModelCall: async (request, handler) => {
      const span = telemetry.start(`chat ${settings.model}`, SpanKind.CLIENT, {
        'gen_ai.operation.name': 'chat',
        'gen_ai.system': settings.system,
        'gen_ai.request.model': settings.model,
        ...(settings.serverAddress ? { 'server.address': settings.serverAddress } : {}),
      });
      try {
        const message = await handler(request);
        const usage = usageOf(message, settings.model);
        span.setAttributes({
          'gen_ai.response.model': usage.model,
          'gen_ai.usage.input_tokens': usage.inputTokens,
          'gen_ai.usage.output_tokens': usage.outputTokens,
        });
        const id = message.id ?? (message.response_metadata as Record<string, unknown> | undefined)?.id;
        if (typeof id === 'string') span.setAttribute('gen_ai.response.id', id);
        telemetry.end(span);
        return message;
      } catch (err) {
        telemetry.end(span, (err as Error).message);
        throw err;
      }
    },
    wrapToolCall: async (request, handler) => {
      const name = request.toolCall.name;
      const span = telemetry.start(`execute_tool ${name}`, SpanKind.INTERNAL, {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': name,
        ...(request.toolCall.id ? { 'gen_ai.tool.call.id': request.toolCall.id } : {}),
      });
      try {
        const result = await handler(request);
        telemetry.end(span, ToolMessage.isInstance(result) && result.status === 'error' ? toolText(result) : undefined);
        return result;
      } catch (err) {
        telemetry.end(span, (err as Error).message);
        throw err;
      }
    },
  });
}

function toolText(message: ToolMessage): string {
  return typeof message.content === 'string' ? message.content : JSON.stringify(message.content);
}

/**
 * Writes the events of each call, and turns a tool's failure (a refused path, a bad argument, an
 * unknown tool) into an error result the model sees instead of a crash.
 */
export function eventsMiddleware(emit: EventSink, settings: { model: string }) {
  return createMiddleware({
    name: 'AmeideEvents',
    wrapModelCall: async (request, handler) => {
      const message = await handler(request);
      emit({ type: 'turn' });
      emit({ type: 'usage', ...usageOf(message, settings.model) });
      const text = message.text;
      if (text) emit({ type: 'message', role: 'assistant', text });
      for (const call of message.tool_calls ?? []) {
        emit({ type: 'tool_call', name: call.name, input: JSON.stringify(call.args ?? {}), ...(call.id ? { id: call.id } : {}) });
      }
      return message;
    },
    wrapToolCall: async (request, handler) => {
      const id = request.toolCall.id;
      let result;
      try {
        result = await handler(request);
      } catch (err) {
        const output = capOutput(`Error: ${(err as Error).message}`, MAX_TOOL_OUTPUT);
        emit({ type: 'tool_result', output, ...(id ? { id } : {}), isError: true });
        return new ToolMessage({ content: output, tool_call_id: id ?? '', name: request.toolCall.name, status: 'error' });
      }
      if (ToolMessage.isInstance(result)) {
        emit({ type: 'tool_result', output: toolText(result), ...(id ? { id } : {}), ...(result.status === 'error' ? { isError: true } : {}) });
      }
      return result;
    },
  });
}
