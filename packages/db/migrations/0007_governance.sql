CREATE TABLE "attestations" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" text NOT NULL,
	"run_id" uuid NOT NULL,
	"predicate_type" text NOT NULL,
	"subjects" jsonb NOT NULL,
	"artifacts" jsonb NOT NULL,
	"key_id" text NOT NULL,
	"development" boolean NOT NULL,
	"envelope" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "elements" (
	"tenant_id" text NOT NULL,
	"kind" text NOT NULL,
	"id" text NOT NULL,
	"attributes" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "elements_tenant_id_kind_id_pk" PRIMARY KEY("tenant_id","kind","id")
);
--> statement-breakpoint
CREATE TABLE "evidence" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" text NOT NULL,
	"run_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"name" text NOT NULL,
	"uri" text NOT NULL,
	"sha256" text NOT NULL,
	"size_bytes" bigint NOT NULL,
	"media_type" text NOT NULL,
	"provenance" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "impediments" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" text NOT NULL,
	"cause_key" text NOT NULL,
	"cause" text NOT NULL,
	"reason" text NOT NULL,
	"phase" text DEFAULT '' NOT NULL,
	"run_id" uuid,
	"work_item_id" text DEFAULT '' NOT NULL,
	"timebox_ids" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"goal_ids" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"handoff_uri" text DEFAULT '' NOT NULL,
	"state" text DEFAULT 'open' NOT NULL,
	"assignee" text DEFAULT '' NOT NULL,
	"resolution" text DEFAULT '' NOT NULL,
	"rerun_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "notification_deliveries" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" text NOT NULL,
	"notification_id" uuid NOT NULL,
	"subscription_id" uuid NOT NULL,
	"channel" text NOT NULL,
	"address" text NOT NULL,
	"state" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"delivered_at" timestamp with time zone,
	"latency_ms" integer
);
--> statement-breakpoint
CREATE TABLE "notifications" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" text NOT NULL,
	"person" text NOT NULL,
	"event" text NOT NULL,
	"run_id" uuid,
	"work_item_id" text DEFAULT '' NOT NULL,
	"dedupe_key" text NOT NULL,
	"subject" text NOT NULL,
	"body" text NOT NULL,
	"content" jsonb NOT NULL,
	"read" boolean DEFAULT false NOT NULL,
	"seq" bigserial NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "relationships" (
	"tenant_id" text NOT NULL,
	"from_kind" text NOT NULL,
	"from_id" text NOT NULL,
	"kind" text NOT NULL,
	"to_kind" text NOT NULL,
	"to_id" text NOT NULL,
	"attributes" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "relationships_tenant_id_from_kind_from_id_kind_to_kind_to_id_pk" PRIMARY KEY("tenant_id","from_kind","from_id","kind","to_kind","to_id")
);
--> statement-breakpoint
CREATE TABLE "run_followups" (
	"run_id" uuid NOT NULL,
	"event" text NOT NULL,
	"tenant_id" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	CONSTRAINT "run_followups_run_id_event_pk" PRIMARY KEY("run_id","event")
);
--> statement-breakpoint
CREATE TABLE "subscriptions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" text NOT NULL,
	"person" text NOT NULL,
	"channel" text NOT NULL,
	"address" text DEFAULT '' NOT NULL,
	"work_item_id" text DEFAULT '*' NOT NULL,
	"secret" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "attestations" ADD CONSTRAINT "attestations_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "evidence" ADD CONSTRAINT "evidence_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "impediments" ADD CONSTRAINT "impediments_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "notification_deliveries" ADD CONSTRAINT "notification_deliveries_notification_id_notifications_id_fk" FOREIGN KEY ("notification_id") REFERENCES "public"."notifications"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "run_followups" ADD CONSTRAINT "run_followups_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "attestations_run_predicate_uq" ON "attestations" USING btree ("run_id","predicate_type");--> statement-breakpoint
CREATE UNIQUE INDEX "evidence_run_name_uq" ON "evidence" USING btree ("run_id","name");--> statement-breakpoint
CREATE UNIQUE INDEX "impediments_cause_uq" ON "impediments" USING btree ("tenant_id","cause_key");--> statement-breakpoint
CREATE INDEX "impediments_tenant_state_idx" ON "impediments" USING btree ("tenant_id","state","created_at");--> statement-breakpoint
CREATE INDEX "impediments_work_item_idx" ON "impediments" USING btree ("tenant_id","work_item_id");--> statement-breakpoint
CREATE UNIQUE INDEX "notification_deliveries_uq" ON "notification_deliveries" USING btree ("notification_id","subscription_id");--> statement-breakpoint
CREATE INDEX "notification_deliveries_state_idx" ON "notification_deliveries" USING btree ("tenant_id","state","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "notifications_dedupe_uq" ON "notifications" USING btree ("tenant_id","dedupe_key");--> statement-breakpoint
CREATE INDEX "notifications_person_idx" ON "notifications" USING btree ("tenant_id","person","seq");--> statement-breakpoint
CREATE INDEX "relationships_to_idx" ON "relationships" USING btree ("tenant_id","to_kind","to_id","kind");--> statement-breakpoint
CREATE INDEX "run_followups_pending_idx" ON "run_followups" USING btree ("created_at") WHERE "run_followups"."started_at" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "subscriptions_uq" ON "subscriptions" USING btree ("tenant_id","person","channel","address","work_item_id");