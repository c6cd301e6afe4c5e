"""`reconcile web` (the browser workspace) and `reconcile users add/remove/list` (who may sign in)."""

from __future__ import annotations

from typing import Annotated

import typer

from reconcile.cli.common import (
    ConfigOption,
    DbOption,
    JsonOption,
    config_for,
    console,
    echo,
    engine_for,
    handles_errors,
    print_json,
    print_table,
)

users_app = typer.Typer(help="People who sign in to `reconcile web`, with their role.", no_args_is_help=True)


@users_app.command("add")
@handles_errors
def users_add(
    name: Annotated[str, typer.Argument(help="User name (shown in the audit log)")],
    role: Annotated[str, typer.Option("--role", help="accountant, approver, collector or admin")],
    password: Annotated[str | None, typer.Option("--password", help="Password (asked for when omitted)")] = None,
    as_json: JsonOption = False,
    db_url: DbOption = None,
) -> None:
    """Add a user; the password is stored as an argon2 hash."""
    from reconcile.services.daily import utcnow
    from reconcile.web.users import add_user

    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    user = add_user(engine_for(db_url), name, role, password, now=utcnow())
    if as_json:
        print_json({"name": user.name, "role": user.role, "added": True})
    else:
        echo(f"added {user.name} ({user.role})")


@users_app.command("remove")
@handles_errors
def users_remove(name: Annotated[str, typer.Argument(help="User name")], as_json: JsonOption = False,
                 db_url: DbOption = None) -> None:
    """Remove a user: their sessions stop working at once."""
    from reconcile.web.users import remove_user

    remove_user(engine_for(db_url), name)
    if as_json:
        print_json({"name": name, "removed": True})
    else:
        echo(f"removed {name}")


@users_app.command("password")
@handles_errors
def users_password(
    name: Annotated[str, typer.Argument(help="User name")],
    password: Annotated[str | None, typer.Option("--password", help="New password (asked for when omitted)")] = None,
    db_url: DbOption = None,
) -> None:
    """Set a new password: every web session of the user is signed out."""
    from reconcile.services.daily import utcnow
    from reconcile.web.users import set_password

    if password is None:
        password = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    ended = set_password(engine_for(db_url), name, password, now=utcnow())
    echo(f"password of {name} changed; {ended} session(s) signed out")


@users_app.command("list")
@handles_errors
def users_list(as_json: JsonOption = False, db_url: DbOption = None) -> None:
    """The users and their roles."""
    from reconcile.web.users import list_users

    users = list_users(engine_for(db_url))
    if as_json:
        print_json([{"name": u.name, "role": u.role} for u in users])
        return
    print_table("users", ["name", "role"], [(u.name, u.role) for u in users])


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")

    @app.command("web")
    @handles_errors
    def web_command(
        host: Annotated[str, typer.Option("--host", help="Address to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", help="Port to listen on")] = 8000,
        db_url: DbOption = None,
        config_dir: ConfigOption = None,
    ) -> None:
        """The web workspace: queue, exceptions, balances, runs and the report (add users with `reconcile users add`).

        Cookies are signed with $RECONCILE_WEB_SECRET (set it to keep people signed in across restarts
        and between several processes; otherwise a random key per process). Sessions are kept in the
        database and end at sign-out, on a password change and after [web] session_idle_minutes /
        session_absolute_hours; set [web] secure_cookie = true behind HTTPS.
        """
        import uvicorn

        from reconcile.web import create_app

        app_ = create_app(engine_for(db_url), config_for(config_dir))
        console.print(f"reconcile web on http://{host}:{port}/", highlight=False)
        uvicorn.run(app_, host=host, port=port, log_level="warning")
