CREATE TABLE "run_output" (
	"run_id" uuid NOT NULL,
	"phase" text NOT NULL,
	"offset" bigint NOT NULL,
	"tenant_id" text NOT NULL,
	"data" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "run_output_run_id_phase_offset_pk" PRIMARY KEY("run_id","phase","offset")
);
--> statement-breakpoint
ALTER TABLE "run_output" ADD CONSTRAINT "run_output_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;