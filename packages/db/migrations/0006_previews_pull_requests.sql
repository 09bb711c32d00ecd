CREATE TABLE "previews" (
	"run_id" uuid PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"work_item_id" text DEFAULT '' NOT NULL,
	"provider" text NOT NULL,
	"target" text DEFAULT '' NOT NULL,
	"url" text DEFAULT '' NOT NULL,
	"alias_url" text DEFAULT '' NOT NULL,
	"state" text NOT NULL,
	"live_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone,
	"stopped_at" timestamp with time zone,
	"stop_reason" text DEFAULT '' NOT NULL
);
--> statement-breakpoint
CREATE TABLE "pull_requests" (
	"id" uuid PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"branch_key" text NOT NULL,
	"provider" text NOT NULL,
	"number" integer NOT NULL,
	"repository" text NOT NULL,
	"title" text NOT NULL,
	"body" text NOT NULL,
	"base_branch" text NOT NULL,
	"head_branch" text NOT NULL,
	"head_commit" text NOT NULL,
	"state" text NOT NULL,
	"url" text DEFAULT '' NOT NULL,
	"work_item_id" text DEFAULT '' NOT NULL,
	"first_run_id" uuid NOT NULL,
	"last_run_id" uuid NOT NULL,
	"revisions" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "previews" ADD CONSTRAINT "previews_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "previews_alias_idx" ON "previews" USING btree ("tenant_id","work_item_id","state","live_at");--> statement-breakpoint
CREATE UNIQUE INDEX "pull_requests_branch_uq" ON "pull_requests" USING btree ("tenant_id","branch_key");--> statement-breakpoint
CREATE INDEX "pull_requests_tenant_updated_idx" ON "pull_requests" USING btree ("tenant_id","updated_at");--> statement-breakpoint
CREATE INDEX "pull_requests_work_item_idx" ON "pull_requests" USING btree ("tenant_id","work_item_id");