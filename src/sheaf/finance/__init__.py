"""The finance domain: users, institutions, members and what aggregating a member gathers
(accounts, transactions, investment holdings). Spoken as MX's Platform API and Nexus."""
