-- PostGraphile v5 doing the work our writes do, for bench.run's
-- "postgraphile5-same-work" column (installed in the bench database only).
--
-- Our createInteraction and recordMetrics write, in one statement that
-- share-locks the session's row (and refuses a completed session): the row,
-- the analytics rollup (the question type's; the metric's day), the user's
-- event counter, the live event with the session's snapshot, and a
-- pg_notify. PostGraphile inserts the one row; a PostGraphile application
-- that kept the same events and rollups would do the rest in triggers. These
-- are those triggers. They fire only for connections whose application_name
-- is 'bench_same_work' (the second v5 process's), so every other server's
-- writes are as before (a WHEN clause, evaluated per inserted row).
-- The notification goes to a channel nobody listens on: that spares the
-- peer the delivery our own process pays for.

CREATE OR REPLACE FUNCTION bench_session_snapshot(s interview_sessions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', s.id, 'status', s.status, 'userId', s.user_id, 'endedAt', s.ended_at,
    'settings', s.settings, 'createdAt', s.created_at, 'startedAt', s.started_at,
    'jobContext', s.job_context)
$$;

-- The session a write goes to, share-locked; a completed one is refused.
CREATE OR REPLACE FUNCTION bench_session_for_write(sid uuid) RETURNS interview_sessions
LANGUAGE plpgsql AS $$
DECLARE s interview_sessions;
BEGIN
  SELECT * INTO s FROM interview_sessions WHERE id = sid FOR SHARE;
  IF s.status = 'completed' THEN
    RAISE EXCEPTION 'session % is completed', s.id;
  END IF;
  RETURN s;
END
$$;

CREATE OR REPLACE FUNCTION bench_event(s interview_sessions, kind text, body jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  INSERT INTO user_event_seq (user_id, seq) VALUES (s.user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET seq = user_event_seq.seq + 1
    RETURNING seq INTO n;
  INSERT INTO session_events (user_id, seq, session_id, type, at, payload)
    VALUES (s.user_id, n, s.id, kind, now(),
            body || jsonb_build_object('session', bench_session_snapshot(s)));
  PERFORM pg_notify('bench_same_work', n::text || ' ' || s.user_id);
END
$$;

CREATE OR REPLACE FUNCTION bench_interaction_same_work() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE s interview_sessions; kind text;
BEGIN
  s := bench_session_for_write(NEW.session_id);
  kind := NEW.question_classification ->> 'type';
  IF kind IS NOT NULL THEN
    INSERT INTO analytics_question_types (user_id, day, question_type, interactions)
      VALUES (s.user_id, (s.created_at AT TIME ZONE 'UTC')::date, kind, 1)
      ON CONFLICT (user_id, day, question_type)
      DO UPDATE SET interactions = analytics_question_types.interactions + 1;
  END IF;
  PERFORM bench_event(s, 'interaction_created', jsonb_build_object('interaction',
    jsonb_build_object(
      'id', NEW.id, 'question', NEW.question, 'sessionId', NEW.session_id,
      'timestamp', NEW.timestamp, 'userFeedback', NEW.user_feedback,
      'selectedResponse', NEW.selected_response,
      'generatedResponses', NEW.generated_responses,
      'questionClassification', NEW.question_classification)));
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION bench_metric_same_work() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE s interview_sessions;
BEGIN
  s := bench_session_for_write(NEW.session_id);
  INSERT INTO analytics_metric_days AS d (user_id, day, metric_day, metrics,
      latency_sum, latency_n, accuracy_sum, accuracy_n, satisfaction_sum, satisfaction_n)
    VALUES (s.user_id, (s.created_at AT TIME ZONE 'UTC')::date,
      (NEW.created_at AT TIME ZONE 'UTC')::date, 1,
      coalesce(NEW.total_latency_ms, 0), (NEW.total_latency_ms IS NOT NULL)::int,
      coalesce(NEW.transcription_accuracy, 0), (NEW.transcription_accuracy IS NOT NULL)::int,
      coalesce(NEW.user_satisfaction, 0), (NEW.user_satisfaction IS NOT NULL)::int)
    ON CONFLICT (user_id, day, metric_day) DO UPDATE SET
      metrics = d.metrics + 1,
      latency_sum = d.latency_sum + excluded.latency_sum,
      latency_n = d.latency_n + excluded.latency_n,
      accuracy_sum = d.accuracy_sum + excluded.accuracy_sum,
      accuracy_n = d.accuracy_n + excluded.accuracy_n,
      satisfaction_sum = d.satisfaction_sum + excluded.satisfaction_sum,
      satisfaction_n = d.satisfaction_n + excluded.satisfaction_n;
  PERFORM bench_event(s, 'metrics_recorded', jsonb_build_object('metric',
    jsonb_build_object(
      'id', NEW.id, 'createdAt', NEW.created_at, 'sessionId', NEW.session_id,
      'totalLatencyMs', NEW.total_latency_ms, 'userSatisfaction', NEW.user_satisfaction,
      'responseGenerationMs', NEW.response_generation_ms,
      'transcriptionAccuracy', NEW.transcription_accuracy,
      'transcriptionLatencyMs', NEW.transcription_latency_ms)));
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS bench_interaction_same_work ON interactions;
CREATE TRIGGER bench_interaction_same_work AFTER INSERT ON interactions FOR EACH ROW
  WHEN (current_setting('application_name') = 'bench_same_work')
  EXECUTE FUNCTION bench_interaction_same_work();

DROP TRIGGER IF EXISTS bench_metric_same_work ON session_metrics;
CREATE TRIGGER bench_metric_same_work AFTER INSERT ON session_metrics FOR EACH ROW
  WHEN (current_setting('application_name') = 'bench_same_work')
  EXECUTE FUNCTION bench_metric_same_work();
