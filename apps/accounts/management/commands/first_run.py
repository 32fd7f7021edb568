from django.core.management.base import BaseCommand

from apps.accounts import services
from orchestra import embedded
from orchestra.env import env_secret, env_str

PASSWORD_FILE = "admin-password"  # noqa: S105 (a file name, not a password)


class Command(BaseCommand):
    help = (
        "Create the demo workspace and its owner if they do not exist yet, and print the login. "
        "Uses ORCHESTRA_ADMIN_EMAIL / ORCHESTRA_ADMIN_PASSWORD when set; otherwise a "
        "generated password is printed once and kept in var/admin-password."
    )

    def handle(self, *args, **options):
        result = services.ensure_first_run(
            env_str("ORCHESTRA_ADMIN_EMAIL"), env_secret("ORCHESTRA_ADMIN_PASSWORD")
        )
        password_file = embedded.var_dir() / PASSWORD_FILE
        if result.password is not None:
            password_file.write_text(result.password + "\n")
            password_file.chmod(0o600)
            self.stdout.write(f"Login: {result.owner.email}  password: {result.password}")
            self.stdout.write(f"(the password is kept in {password_file})")
        elif password_file.exists():
            self.stdout.write(f"Login: {result.owner.email}  password: in {password_file}")
        else:
            self.stdout.write(f"Login: {result.owner.email}  (password: ORCHESTRA_ADMIN_PASSWORD)")
