from soundstorm.cli import main

raise SystemExit(main())
