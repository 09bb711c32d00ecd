DROP INDEX "definitions_tenant_name_uq";--> statement-breakpoint
ALTER TABLE "definitions" ADD COLUMN "deleted_at" timestamp with time zone;--> statement-breakpoint
CREATE UNIQUE INDEX "definitions_tenant_name_uq" ON "definitions" USING btree ("tenant_id","name") WHERE "definitions"."deleted_at" is null;