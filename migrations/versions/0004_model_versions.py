"""Add model versions, trained by `indexer train`, and the model version of each index version.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('model_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=True),
    sa.Column('base_name', sa.String(length=200), nullable=False),
    sa.Column('base_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('base_model_version_id', sa.Integer(), nullable=True),
    sa.Column('data_checksum', sa.String(length=64), nullable=False),
    sa.Column('path', sa.Text(), nullable=True),
    sa.Column('card', sa.JSON(), nullable=True),
    sa.Column('training_seconds', sa.Float(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('training', 'ready', 'failed')", name=op.f('ck_model_versions_status')),
    sa.ForeignKeyConstraint(['base_model_version_id'], ['model_versions.id'], name=op.f('fk_model_versions_base_model_version_id_model_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_versions'))
    )
    # Batch mode, so that SQLite, which cannot add a foreign key in place, copies the table.
    with op.batch_alter_table('index_versions') as batch:
        batch.add_column(sa.Column('model_version_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f('fk_index_versions_model_version_id_model_versions'),
                                 'model_versions', ['model_version_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('index_versions') as batch:
        batch.drop_constraint(op.f('fk_index_versions_model_version_id_model_versions'), type_='foreignkey')
        batch.drop_column('model_version_id')
    op.drop_table('model_versions')
