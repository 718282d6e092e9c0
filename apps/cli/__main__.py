from soundstorm.apps.cli.main import main

raise SystemExit(main())
