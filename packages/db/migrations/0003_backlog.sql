CREATE TABLE "profiles" (
	"tenant_id" text NOT NULL,
	"name" text NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"spec" jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "profiles_tenant_id_name_pk" PRIMARY KEY("tenant_id","name")
);
--> statement-breakpoint
CREATE TABLE "webhook_deliveries" (
	"tenant_id" text NOT NULL,
	"delivery_id" text NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "webhook_deliveries_tenant_id_delivery_id_pk" PRIMARY KEY("tenant_id","delivery_id")
);
--> statement-breakpoint
CREATE TABLE "work_items" (
	"tenant_id" text NOT NULL,
	"id" text NOT NULL,
	"revision" bigint NOT NULL,
	"spec" jsonb NOT NULL,
	"annotations" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"readiness" jsonb NOT NULL,
	"state" text NOT NULL,
	"profile" text NOT NULL,
	"ready" boolean NOT NULL,
	"trigger_revision" bigint,
	"triggered_revision" bigint,
	"plan_id" uuid,
	"run_id" uuid,
	"ready_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "work_items_tenant_id_id_pk" PRIMARY KEY("tenant_id","id")
);
--> statement-breakpoint
ALTER TABLE "plans" ADD COLUMN "work_item_id" text;--> statement-breakpoint
ALTER TABLE "plans" ADD COLUMN "work_item_revision" bigint;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "ready_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "work_items_tenant_updated_idx" ON "work_items" USING btree ("tenant_id","updated_at");--> statement-breakpoint
CREATE INDEX "work_items_spec_gin" ON "work_items" USING gin ("spec" jsonb_path_ops);--> statement-breakpoint
CREATE UNIQUE INDEX "plans_work_item_revision_uq" ON "plans" USING btree ("tenant_id","work_item_id","work_item_revision");