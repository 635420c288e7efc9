"""Enterprise carbon accounts (docs/enterprise.md): employees link their personal accounts to an
enterprise with their recorded consent (`links`, `enterprise`), the enterprise sees the
pseudonymous aggregate of its linked employees' reductions per month and scenario (`readmodel`,
built from account.events off the crediting path), and enterprise-scope scenarios credit
enterprise accounts only (`scope`). Collections of its own (`store`)."""
