from sheaf.cli import app

app()
