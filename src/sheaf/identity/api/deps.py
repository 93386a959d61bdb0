"""Authorities the SailPoint endpoints require, as the vendor's spec lists them."""

from sheaf.auth.deps import require

SOURCE_ADMINS = ("ORG_ADMIN", "SOURCE_ADMIN", "SOURCE_SUBADMIN")
TASK_READERS = (*SOURCE_ADMINS, "HELPDESK", "CERT_ADMIN", "REPORT_ADMIN", "ROLE_ADMIN",
                "ROLE_SUBADMIN", "DASHBOARD")

source_admin = require(*SOURCE_ADMINS)
task_reader = require(*TASK_READERS)
task_writer = require("ORG_ADMIN", "SOURCE_ADMIN")
identity_reader = require("ORG_ADMIN", "HELPDESK", "SOURCE_ADMIN", "ROLE_ADMIN")
