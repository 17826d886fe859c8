"""Add delta-build counts, a note per version, and the activation history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('activations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('previous_version_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("action IN ('activate', 'rollback')", name=op.f('ck_activations_action')),
    sa.ForeignKeyConstraint(['previous_version_id'], ['index_versions.id'], name=op.f('fk_activations_previous_version_id_index_versions')),
    sa.ForeignKeyConstraint(['version_id'], ['index_versions.id'], name=op.f('fk_activations_version_id_index_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activations'))
    )
    with op.batch_alter_table('index_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('base_version_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('new_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('changed_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('unchanged_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('removed_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('encoded_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('note', sa.Text(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_index_versions_base_version_id_index_versions'), 'index_versions', ['base_version_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('index_versions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_index_versions_base_version_id_index_versions'), type_='foreignkey')
        batch_op.drop_column('note')
        batch_op.drop_column('encoded_count')
        batch_op.drop_column('removed_count')
        batch_op.drop_column('unchanged_count')
        batch_op.drop_column('changed_count')
        batch_op.drop_column('new_count')
        batch_op.drop_column('base_version_id')

    op.drop_table('activations')
