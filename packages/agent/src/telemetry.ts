/**
 * The runtime's spans. The sandbox reaches only the model host, so they are kept in memory and
 * written, when the runtime ends (also when it fails or is stopped), as one OTLP/JSON
 * ExportTraceServiceRequest to --spans-file; the worker sends that file to its collector.
 *
 * Spans: `agent` (the root, a child of --traceparent's span), one `chat <model>` per model call and
 * one `execute_tool <name>` per tool call, with the OpenTelemetry gen_ai attributes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import { Resource } from '@opentelemetry/resources';
import { AlwaysOnSampler, BasicTracerProvider, InMemorySpanExporter, ParentBasedSampler, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The context of a W3C `traceparent` (the agent phase's span), or the root context when it is absent or malformed. */
export function parentContext(traceparent: string | undefined): Context {
  const m = traceparent ? TRACEPARENT.exec(traceparent.trim().toLowerCase()) : null;
  if (!m || m[1] === 'ff' || /^0+$/.test(m[2]!) || /^0+$/.test(m[3]!)) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: m[2]!,
    spanId: m[3]!,
    traceFlags: parseInt(m[4]!, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  });
}

export class AgentTelemetry {
  private readonly provider: BasicTracerProvider;
  private readonly exporter = new InMemorySpanExporter();
  private readonly tracer: Tracer;
  private readonly open = new Set<Span>();
  readonly root: Span;
  private readonly rootContext: Context;
  private written = false;

  constructor(options: { traceparent?: string; model: string; system: string }) {
    this.provider = new BasicTracerProvider({
      resource: new Resource({ 'service.name': 'ameide-agent' }),
      sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
      spanProcessors: [new SimpleSpanProcessor(this.exporter)],
    });
    this.tracer = this.provider.getTracer('@ameide/agent');
    this.root = this.tracer.startSpan(
      'agent',
      {
        kind: SpanKind.INTERNAL,
        attributes: {
          'gen_ai.operation.name': 'invoke_agent',
          'gen_ai.agent.name': 'ameide-langchain',
          'gen_ai.request.model': options.model,
          'gen_ai.system': options.system,
        },
      },
      parentContext(options.traceparent),
    );
    this.rootContext = trace.setSpan(context.active(), this.root);
  }

  /** Starts a child span of the root. */
  start(name: string, kind: SpanKind, attributes: Attributes): Span {
    const span = this.tracer.startSpan(name, { kind, attributes }, this.rootContext);
    this.open.add(span);
    return span;
  }

  end(span: Span, error?: string): void {
    if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
    span.end();
    this.open.delete(span);
  }

  /**
   * Ends every open span and the root (with `error`, if any) and writes them all to `file` as
   * OTLP/JSON. Synchronous, so a signal handler can call it; only the first call writes.
   */
  finish(file: string | undefined, error?: string): number {
    if (this.written) return 0;
    this.written = true;
    for (const span of [...this.open]) this.end(span, error ?? 'the agent ended before this finished');
    if (error !== undefined) this.root.setStatus({ code: SpanStatusCode.ERROR, message: error });
    this.root.end();
    const spans = this.exporter.getFinishedSpans();
    if (file) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, JsonTraceSerializer.serializeRequest(spans) ?? new Uint8Array());
    }
    return spans.length;
  }
}
