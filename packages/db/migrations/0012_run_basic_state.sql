-- A run's state as lists show it (RUN_VIEW_BASIC): without the phases' output tails, the summary's
-- evidence files, egress record and per-call token counts. Kept in a column Postgres computes when
-- the state is written, so a list does not cut every listed run's state at read time.
CREATE FUNCTION "ameide_basic_state"(s jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN jsonb_typeof(s->'phases') = 'array'
		THEN jsonb_set(s #- '{summary,evidence}' #- '{summary,egress}' #- '{summary,agent,calls}', '{phases}',
			coalesce((SELECT jsonb_agg(p - 'outputTail' ORDER BY n) FROM jsonb_array_elements(s->'phases') WITH ORDINALITY AS e(p, n)), '[]'::jsonb))
		ELSE s #- '{summary,evidence}' #- '{summary,egress}' #- '{summary,agent,calls}' END
$$;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "basic_state" jsonb GENERATED ALWAYS AS (ameide_basic_state(state)) STORED;
