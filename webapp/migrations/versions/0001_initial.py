"""initial: every table of the review app

The whole schema for the review app's lifecycle (see webapp/models.py), and the triggers that make audit_log
append-only on SQLite and PostgreSQL.

Revision ID: 0001
Revises:
Create Date: 2026-12-01 20:17:03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


APPEND_ONLY_SQLITE = [
    """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
]
APPEND_ONLY_POSTGRESQL = [
    """CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$""",
    """CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
       FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
    """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
       FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""",
]


def _append_only_audit_log() -> None:
    dialect = op.get_bind().dialect.name
    statements = {"sqlite": APPEND_ONLY_SQLITE, "postgresql": APPEND_ONLY_POSTGRESQL}.get(dialect)
    if statements is None:
        raise NotImplementedError(f"audit_log append-only triggers for {dialect}: add them here")
    for sql in statements:
        op.execute(sql)


def upgrade() -> None:
    op.create_table('call_index',
    sa.Column('call_id', sa.String(length=200), nullable=False),
    sa.Column('call_date', sa.String(length=10), nullable=False),
    sa.Column('agent_id', sa.String(length=200), nullable=True),
    sa.Column('team', sa.String(length=200), nullable=True),
    sa.Column('iso_week', sa.String(length=8), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.Column('campaign', sa.String(length=200), nullable=True),
    sa.Column('call_type', sa.String(length=40), nullable=True),
    sa.Column('direction', sa.String(length=20), nullable=True),
    sa.Column('mode', sa.String(length=20), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('role_confidence', sa.Float(), nullable=True),
    sa.Column('n_flags', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('call_id', name=op.f('pk_call_index'))
    )
    op.create_index('ix_call_index_agent_id', 'call_index', ['agent_id'], unique=False)
    op.create_index('ix_call_index_call_date', 'call_index', ['call_date'], unique=False)
    op.create_index('ix_call_index_iso_week', 'call_index', ['iso_week'], unique=False)
    op.create_index('ix_call_index_team', 'call_index', ['team'], unique=False)

    op.create_table('login_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempts'))
    )
    op.create_index('ix_login_attempts_at', 'login_attempts', ['at'], unique=False)
    op.create_index('ix_login_attempts_ip_at', 'login_attempts', ['ip', 'at'], unique=False)
    op.create_index('ix_login_attempts_username_at', 'login_attempts', ['username', 'at'], unique=False)

    op.create_table('review_queue_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('call_id', sa.String(length=200), nullable=False),
    sa.Column('call_date', sa.String(length=10), nullable=False),
    sa.Column('target_type', sa.String(length=10), nullable=False),
    sa.Column('target_id', sa.String(length=200), nullable=False),
    sa.Column('agent_id', sa.String(length=200), nullable=True),
    sa.Column('team', sa.String(length=200), nullable=True),
    sa.Column('iso_week', sa.String(length=8), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.Column('flag_type', sa.String(length=64), nullable=True),
    sa.Column('criterion', sa.String(length=64), nullable=True),
    sa.Column('item', sa.String(length=200), nullable=True),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('severity_rank', sa.Integer(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('start_s', sa.Float(), nullable=True),
    sa.Column('end_s', sa.Float(), nullable=True),
    sa.Column('utterance_index', sa.Integer(), nullable=True),
    sa.Column('fragility', sa.Float(), nullable=False),
    sa.Column('asr_mean_prob', sa.Float(), nullable=True),
    sa.Column('asr_min_prob', sa.Float(), nullable=True),
    sa.Column('role_confidence', sa.Float(), nullable=True),
    sa.Column('review_state', sa.String(length=20), nullable=False),
    sa.CheckConstraint("target_type IN ('flag', 'item')", name=op.f('ck_review_queue_items_target_type')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_queue_items')),
    sa.UniqueConstraint('call_id', 'target_type', 'target_id', name=op.f('uq_review_queue_items_call_id_target_type_target_id'))
    )
    op.create_index('ix_review_queue_items_agent_order', 'review_queue_items', ['agent_id', 'severity_rank', sa.text('fragility DESC'), 'id'], unique=False)
    op.create_index('ix_review_queue_items_call_date', 'review_queue_items', ['call_date'], unique=False)
    op.create_index('ix_review_queue_items_call_id', 'review_queue_items', ['call_id'], unique=False)
    op.create_index('ix_review_queue_items_criterion', 'review_queue_items', ['criterion'], unique=False)
    op.create_index('ix_review_queue_items_flag_type', 'review_queue_items', ['flag_type'], unique=False)
    op.create_index('ix_review_queue_items_iso_week', 'review_queue_items', ['iso_week'], unique=False)
    op.create_index('ix_review_queue_items_language', 'review_queue_items', ['language'], unique=False)
    op.create_index('ix_review_queue_items_order', 'review_queue_items', ['severity_rank', sa.text('fragility DESC'), 'id'], unique=False)
    op.create_index('ix_review_queue_items_severity', 'review_queue_items', ['severity'], unique=False)
    op.create_index('ix_review_queue_items_state_order', 'review_queue_items', ['review_state', 'severity_rank', sa.text('fragility DESC'), 'id'], unique=False)
    op.create_index('ix_review_queue_items_team_order', 'review_queue_items', ['team', 'severity_rank', sa.text('fragility DESC'), 'id'], unique=False)
    op.create_index('ix_review_queue_items_week_order', 'review_queue_items', ['iso_week', 'severity_rank', sa.text('fragility DESC'), 'id'], unique=False)

    op.create_table('sync_state',
    sa.Column('call_date', sa.String(length=64), nullable=False),
    sa.Column('marker', sa.String(length=64), nullable=False),
    sa.Column('synced_at', sa.DateTime(), nullable=False),
    sa.Column('calls', sa.Integer(), nullable=False),
    sa.Column('items', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('call_date', name=op.f('pk_sync_state'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('agent_id', sa.String(length=200), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('can_view_unredacted', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('password_changed_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("role <> 'agent' OR agent_id IS NOT NULL", name=op.f('ck_users_agent_has_agent_id')),
    sa.CheckConstraint("role IN ('admin', 'qa_lead', 'qa_reviewer', 'trainer', 'manager', 'agent')", name=op.f('ck_users_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_index('ix_users_agent_id', 'users', ['agent_id'], unique=False)

    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('username', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('target_type', sa.String(length=40), nullable=True),
    sa.Column('target_id', sa.String(length=200), nullable=True),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_audit_log_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index('ix_audit_log_action', 'audit_log', ['action'], unique=False)
    op.create_index('ix_audit_log_at', 'audit_log', ['at'], unique=False)
    op.create_index('ix_audit_log_target', 'audit_log', ['target_type', 'target_id', 'at'], unique=False)
    op.create_index('ix_audit_log_user_at', 'audit_log', ['user_id', 'at'], unique=False)

    op.create_table('calibration_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('blind', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('due_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("state IN ('open', 'closed')", name=op.f('ck_calibration_sessions_state')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_calibration_sessions_created_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calibration_sessions'))
    )
    op.create_table('call_views',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('played_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_call_views_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_views'))
    )
    op.create_index('ix_call_views_call_id', 'call_views', ['call_id'], unique=False)
    op.create_index('ix_call_views_user_id', 'call_views', ['user_id'], unique=False)

    op.create_table('coaching_marks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trainer_id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.String(length=200), nullable=False),
    sa.Column('agent_id', sa.String(length=200), nullable=True),
    sa.Column('start_s', sa.Float(), nullable=False),
    sa.Column('end_s', sa.Float(), nullable=False),
    sa.Column('utterance_index', sa.Integer(), nullable=True),
    sa.Column('criterion', sa.String(length=200), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('due_at', sa.DateTime(), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['trainer_id'], ['users.id'], name=op.f('fk_coaching_marks_trainer_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coaching_marks'))
    )
    op.create_index('ix_coaching_marks_agent', 'coaching_marks', ['agent_id', 'created_at'], unique=False)
    op.create_index('ix_coaching_marks_call_id', 'coaching_marks', ['call_id'], unique=False)

    op.create_table('samples',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('filters', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('seed', sa.BigInteger(), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("method IN ('random', 'stratified', 'manual')", name=op.f('ck_samples_method')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_samples_created_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_samples'))
    )
    op.create_table('sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=400), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sessions'))
    )
    op.create_index('ix_sessions_expires_at', 'sessions', ['expires_at'], unique=False)
    op.create_index('ix_sessions_user_id', 'sessions', ['user_id'], unique=False)

    op.create_table('user_teams',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('team', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_teams_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'team', name=op.f('pk_user_teams'))
    )
    op.create_index('ix_user_teams_team', 'user_teams', ['team'], unique=False)

    op.create_table('calibration_calls',
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['calibration_sessions.id'], name=op.f('fk_calibration_calls_session_id_calibration_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('session_id', 'call_id', name=op.f('pk_calibration_calls'))
    )
    op.create_table('calibration_members',
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.CheckConstraint("role IN ('rater', 'expert')", name=op.f('ck_calibration_members_role')),
    sa.ForeignKeyConstraint(['session_id'], ['calibration_sessions.id'], name=op.f('fk_calibration_members_session_id_calibration_sessions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_calibration_members_user_id_users')),
    sa.PrimaryKeyConstraint('session_id', 'user_id', name=op.f('pk_calibration_members'))
    )
    op.create_table('evaluations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('calibration_session_id', sa.Integer(), nullable=True),
    sa.Column('reviewer_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('sample_id', sa.Integer(), nullable=True),
    sa.Column('sample_filters', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('rubric_version', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(), nullable=True),
    sa.Column('acknowledged_by', sa.Integer(), nullable=True),
    sa.Column('dispute_window_ends_at', sa.DateTime(), nullable=True),
    sa.Column('exported_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("(kind = 'calibration') = (calibration_session_id IS NOT NULL)", name=op.f('ck_evaluations_calibration_session')),
    sa.CheckConstraint("kind IN ('standard', 'calibration')", name=op.f('ck_evaluations_kind')),
    sa.CheckConstraint("state IN ('draft', 'submitted', 'acknowledged', 'disputed', 'resolved')", name=op.f('ck_evaluations_state')),
    sa.ForeignKeyConstraint(['acknowledged_by'], ['users.id'], name=op.f('fk_evaluations_acknowledged_by_users')),
    sa.ForeignKeyConstraint(['calibration_session_id'], ['calibration_sessions.id'], name=op.f('fk_evaluations_calibration_session_id_calibration_sessions')),
    sa.ForeignKeyConstraint(['reviewer_id'], ['users.id'], name=op.f('fk_evaluations_reviewer_id_users')),
    sa.ForeignKeyConstraint(['sample_id'], ['samples.id'], name=op.f('fk_evaluations_sample_id_samples')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluations'))
    )
    op.create_index('ix_evaluations_call_id', 'evaluations', ['call_id'], unique=False)
    op.create_index('ix_evaluations_reviewer_id', 'evaluations', ['reviewer_id'], unique=False)
    op.create_index('ix_evaluations_state_updated', 'evaluations', ['state', 'updated_at'], unique=False)
    op.create_index('uq_evaluations_calibration', 'evaluations', ['calibration_session_id', 'call_id', 'reviewer_id'], unique=True, sqlite_where=sa.text("kind = 'calibration'"), postgresql_where=sa.text("kind = 'calibration'"))
    op.create_index('uq_evaluations_standard_call', 'evaluations', ['call_id'], unique=True, sqlite_where=sa.text("kind = 'standard'"), postgresql_where=sa.text("kind = 'standard'"))

    op.create_table('sample_calls',
    sa.Column('sample_id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['sample_id'], ['samples.id'], name=op.f('fk_sample_calls_sample_id_samples'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sample_id', 'call_id', name=op.f('pk_sample_calls'))
    )
    op.create_index('ix_sample_calls_call_id', 'sample_calls', ['call_id'], unique=False)

    op.create_table('comments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.String(length=200), nullable=False),
    sa.Column('utterance_index', sa.Integer(), nullable=True),
    sa.Column('target_type', sa.String(length=10), nullable=True),
    sa.Column('target_id', sa.String(length=200), nullable=True),
    sa.Column('evaluation_id', sa.Integer(), nullable=True),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('edited_at', sa.DateTime(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_comments_author_id_users')),
    sa.ForeignKeyConstraint(['evaluation_id'], ['evaluations.id'], name=op.f('fk_comments_evaluation_id_evaluations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_comments'))
    )
    op.create_index('ix_comments_call', 'comments', ['call_id', 'utterance_index'], unique=False)

    op.create_table('verdicts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('evaluation_id', sa.Integer(), nullable=False),
    sa.Column('target_type', sa.String(length=10), nullable=False),
    sa.Column('target_id', sa.String(length=200), nullable=False),
    sa.Column('auto_answer', sa.String(length=64), nullable=True),
    sa.Column('human_answer', sa.String(length=64), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('evidence_start_s', sa.Float(), nullable=True),
    sa.Column('evidence_end_s', sa.Float(), nullable=True),
    sa.Column('by_user_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("target_type IN ('flag', 'item')", name=op.f('ck_verdicts_target_type')),
    sa.ForeignKeyConstraint(['by_user_id'], ['users.id'], name=op.f('fk_verdicts_by_user_id_users')),
    sa.ForeignKeyConstraint(['evaluation_id'], ['evaluations.id'], name=op.f('fk_verdicts_evaluation_id_evaluations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_verdicts')),
    sa.UniqueConstraint('evaluation_id', 'target_type', 'target_id', name=op.f('uq_verdicts_evaluation_id_target_type_target_id'))
    )
    op.create_index('ix_verdicts_evaluation_id', 'verdicts', ['evaluation_id'], unique=False)
    op.create_index('ix_verdicts_target', 'verdicts', ['target_type', 'target_id'], unique=False)

    op.create_table('disputes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('evaluation_id', sa.Integer(), nullable=False),
    sa.Column('verdict_id', sa.Integer(), nullable=True),
    sa.Column('raised_by', sa.Integer(), nullable=False),
    sa.Column('raised_at', sa.DateTime(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('assigned_to', sa.Integer(), nullable=True),
    sa.Column('resolved_by', sa.Integer(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=True),
    sa.Column('root_cause', sa.String(length=20), nullable=True),
    sa.Column('resolution_note', sa.Text(), nullable=True),
    sa.CheckConstraint("outcome IS NULL OR outcome IN ('upheld', 'overturned', 'partly_overturned')", name=op.f('ck_disputes_outcome')),
    sa.CheckConstraint("root_cause IS NULL OR root_cause IN ('asr_error', 'wrong_speaker', 'rule_defect', 'judgement')", name=op.f('ck_disputes_root_cause')),
    sa.CheckConstraint("state <> 'resolved' OR (outcome IS NOT NULL AND root_cause IS NOT NULL AND resolved_by IS NOT NULL)", name=op.f('ck_disputes_resolution_complete')),
    sa.CheckConstraint("state IN ('open', 'resolved')", name=op.f('ck_disputes_state')),
    sa.ForeignKeyConstraint(['assigned_to'], ['users.id'], name=op.f('fk_disputes_assigned_to_users')),
    sa.ForeignKeyConstraint(['evaluation_id'], ['evaluations.id'], name=op.f('fk_disputes_evaluation_id_evaluations')),
    sa.ForeignKeyConstraint(['raised_by'], ['users.id'], name=op.f('fk_disputes_raised_by_users')),
    sa.ForeignKeyConstraint(['resolved_by'], ['users.id'], name=op.f('fk_disputes_resolved_by_users')),
    sa.ForeignKeyConstraint(['verdict_id'], ['verdicts.id'], name=op.f('fk_disputes_verdict_id_verdicts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disputes'))
    )
    op.create_index('ix_disputes_evaluation_id', 'disputes', ['evaluation_id'], unique=False)
    op.create_index('ix_disputes_state_raised', 'disputes', ['state', 'raised_at'], unique=False)

    _append_only_audit_log()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER audit_log_no_change ON audit_log")
        op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_index('ix_disputes_state_raised', table_name='disputes')
    op.drop_index('ix_disputes_evaluation_id', table_name='disputes')

    op.drop_table('disputes')
    op.drop_index('ix_verdicts_target', table_name='verdicts')
    op.drop_index('ix_verdicts_evaluation_id', table_name='verdicts')

    op.drop_table('verdicts')
    op.drop_index('ix_comments_call', table_name='comments')

    op.drop_table('comments')
    op.drop_index('ix_sample_calls_call_id', table_name='sample_calls')

    op.drop_table('sample_calls')
    op.drop_index('uq_evaluations_standard_call', table_name='evaluations', sqlite_where=sa.text("kind = 'standard'"), postgresql_where=sa.text("kind = 'standard'"))
    op.drop_index('uq_evaluations_calibration', table_name='evaluations', sqlite_where=sa.text("kind = 'calibration'"), postgresql_where=sa.text("kind = 'calibration'"))
    op.drop_index('ix_evaluations_state_updated', table_name='evaluations')
    op.drop_index('ix_evaluations_reviewer_id', table_name='evaluations')
    op.drop_index('ix_evaluations_call_id', table_name='evaluations')

    op.drop_table('evaluations')
    op.drop_table('calibration_members')
    op.drop_table('calibration_calls')
    op.drop_index('ix_user_teams_team', table_name='user_teams')

    op.drop_table('user_teams')
    op.drop_index('ix_sessions_user_id', table_name='sessions')
    op.drop_index('ix_sessions_expires_at', table_name='sessions')

    op.drop_table('sessions')
    op.drop_table('samples')
    op.drop_index('ix_coaching_marks_call_id', table_name='coaching_marks')
    op.drop_index('ix_coaching_marks_agent', table_name='coaching_marks')

    op.drop_table('coaching_marks')
    op.drop_index('ix_call_views_user_id', table_name='call_views')
    op.drop_index('ix_call_views_call_id', table_name='call_views')

    op.drop_table('call_views')
    op.drop_table('calibration_sessions')
    op.drop_index('ix_audit_log_user_at', table_name='audit_log')
    op.drop_index('ix_audit_log_target', table_name='audit_log')
    op.drop_index('ix_audit_log_at', table_name='audit_log')
    op.drop_index('ix_audit_log_action', table_name='audit_log')

    op.drop_table('audit_log')
    op.drop_index('ix_users_agent_id', table_name='users')

    op.drop_table('users')
    op.drop_table('sync_state')
    op.drop_index('ix_review_queue_items_week_order', table_name='review_queue_items')
    op.drop_index('ix_review_queue_items_team_order', table_name='review_queue_items')
    op.drop_index('ix_review_queue_items_state_order', table_name='review_queue_items')
    op.drop_index('ix_review_queue_items_severity', table_name='review_queue_items')
    op.drop_index('ix_review_queue_items_order', table_name='review_queue_items')
    op.drop_index('ix_review_queue_items_language', table_name='review_queue_items')
    op.drop_index('ix_review_queue_items_iso_week', table_name='review_queue_items')
    op.drop_index('ix_review_queue_items_flag_type', table_name='review_queue_items')
    op.drop_index('ix_review_queue_items_criterion', table_name='review_queue_items')
    op.drop_index('ix_review_queue_items_call_id', table_name='review_queue_items')
    op.drop_index('ix_review_queue_items_call_date', table_name='review_queue_items')
    op.drop_index('ix_review_queue_items_agent_order', table_name='review_queue_items')

    op.drop_table('review_queue_items')
    op.drop_index('ix_login_attempts_username_at', table_name='login_attempts')
    op.drop_index('ix_login_attempts_ip_at', table_name='login_attempts')
    op.drop_index('ix_login_attempts_at', table_name='login_attempts')

    op.drop_table('login_attempts')
    op.drop_index('ix_call_index_team', table_name='call_index')
    op.drop_index('ix_call_index_iso_week', table_name='call_index')
    op.drop_index('ix_call_index_call_date', table_name='call_index')
    op.drop_index('ix_call_index_agent_id', table_name='call_index')

    op.drop_table('call_index')
