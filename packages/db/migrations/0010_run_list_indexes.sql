CREATE TABLE "run_work_items" (
	"run_id" uuid NOT NULL,
	"tenant_id" text NOT NULL,
	"work_item_id" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "run_work_items_run_id_work_item_id_pk" PRIMARY KEY("run_id","work_item_id")
);
--> statement-breakpoint
DROP INDEX "runs_tenant_status_idx";--> statement-breakpoint
DROP INDEX "runs_tenant_definition_idx";--> statement-breakpoint
DROP INDEX "runs_tenant_created_idx";--> statement-breakpoint
DROP INDEX "runs_spec_gin";--> statement-breakpoint
ALTER TABLE "run_work_items" ADD CONSTRAINT "run_work_items_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "run_work_items_list_idx" ON "run_work_items" USING btree ("tenant_id","work_item_id","created_at","run_id");--> statement-breakpoint
CREATE INDEX "runs_tenant_created_id_idx" ON "runs" USING btree ("tenant_id","created_at","id");--> statement-breakpoint
CREATE INDEX "runs_tenant_status_created_idx" ON "runs" USING btree ("tenant_id","status","created_at","id");--> statement-breakpoint
CREATE INDEX "runs_tenant_definition_created_idx" ON "runs" USING btree ("tenant_id","definition_id","created_at","id");--> statement-breakpoint
-- run_work_items follows runs.spec.workItemIds (and created_at) on every insert or change of a run.
CREATE FUNCTION "run_work_items_sync"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'UPDATE' THEN
		DELETE FROM "run_work_items" WHERE "run_id" = OLD."id";
	END IF;
	INSERT INTO "run_work_items" ("run_id", "tenant_id", "work_item_id", "created_at")
	SELECT NEW."id", NEW."tenant_id", w, NEW."created_at"
	FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(NEW."spec"->'workItemIds') = 'array' THEN NEW."spec"->'workItemIds' ELSE '[]'::jsonb END) AS w
	ON CONFLICT DO NOTHING;
	RETURN NULL;
END $$;--> statement-breakpoint
CREATE TRIGGER "runs_work_items_sync" AFTER INSERT OR UPDATE OF "spec", "tenant_id", "created_at" ON "runs"
	FOR EACH ROW EXECUTE FUNCTION "run_work_items_sync"();--> statement-breakpoint
INSERT INTO "run_work_items" ("run_id", "tenant_id", "work_item_id", "created_at")
SELECT r."id", r."tenant_id", w, r."created_at"
FROM "runs" r, jsonb_array_elements_text(CASE WHEN jsonb_typeof(r."spec"->'workItemIds') = 'array' THEN r."spec"->'workItemIds' ELSE '[]'::jsonb END) AS w
ON CONFLICT DO NOTHING;
