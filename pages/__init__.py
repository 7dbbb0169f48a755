"""The page layer: the screens that show several apps' data together.

The designer, the deployer, teams and the audit trail each know their own data; a page such as
the design page (a design's editor with its Deploy bar and, later, which version is live on
which target and the change set a deploy would make), the deployment page (its resources'
badges, the diagram coloured by them and, later, its runs, drift and outputs) or a team's
history (its deployments and audit entries) is where they meet. Those compositions live here,
so that designer, teams and audit never import the deployer (import-linter's contracts in
pyproject.toml keep it so, in ``make test``). Each page module has the views and the context
of one page; ``pages/urls.py`` mounts them under the URL names the apps already use.
"""
