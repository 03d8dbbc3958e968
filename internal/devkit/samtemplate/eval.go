package samtemplate

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Env gives intrinsic functions their values, as CloudFormation would at
// deploy time: parameters (defaults fill what Params leaves out), pseudo
// parameters, and the Ref and Fn::GetAtt values of resources.
type Env struct {
	Params map[string]string // parameter and pseudo-parameter values (AWS::Region, ...)
	Refs   map[string]string // resource logical id -> Ref value
	Attrs  map[string]string // "Resource.Attribute" -> Fn::GetAtt value
}

// noValue is what AWS::NoValue evaluates to: the key or item is dropped.
type noValue struct{}

// Eval resolves every intrinsic function in v: Ref, Fn::GetAtt, Fn::Sub,
// Fn::Join, Fn::Select, Fn::Split, Fn::If (with the template's conditions)
// and the condition functions. A property set to AWS::NoValue disappears.
func (t Template) Eval(v any, e Env) (any, error) {
	out, err := t.eval(v, e)
	if _, ok := out.(noValue); ok {
		return nil, err
	}
	return out, err
}

// EvalString is Eval for a value that must come out a string.
func (t Template) EvalString(v any, e Env) (string, error) {
	out, err := t.Eval(v, e)
	if err != nil {
		return "", err
	}
	s, ok := out.(string)
	if !ok {
		return "", fmt.Errorf("%v evaluates to %T, not a string", v, out)
	}
	return s, nil
}

func (t Template) eval(v any, e Env) (any, error) {
	switch x := v.(type) {
	case []any:
		out := make([]any, 0, len(x))
		for _, item := range x {
			r, err := t.eval(item, e)
			if err != nil {
				return nil, err
			}
			if _, drop := r.(noValue); !drop {
				out = append(out, r)
			}
		}
		return out, nil
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") || k == "Condition" {
					return t.intrinsic(k, arg, e)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, item := range x {
			r, err := t.eval(item, e)
			if err != nil {
				return nil, err
			}
			if _, drop := r.(noValue); !drop {
				out[k] = r
			}
		}
		return out, nil
	}
	return v, nil
}

func (t Template) intrinsic(fn string, arg any, e Env) (any, error) {
	switch fn {
	case "Ref":
		name, _ := arg.(string)
		return t.ref(name, e)
	case "Condition":
		name, _ := arg.(string)
		return t.Condition(name, e)
	case "Fn::GetAtt":
		parts, _ := arg.([]any)
		if len(parts) != 2 {
			return nil, fmt.Errorf("Fn::GetAtt %v: want [resource, attribute]", arg)
		}
		key := fmt.Sprintf("%v.%v", parts[0], parts[1])
		if v, ok := e.Attrs[key]; ok {
			return v, nil
		}
		return nil, fmt.Errorf("Fn::GetAtt %s: no value in the environment", key)
	case "Fn::Sub":
		return t.sub(arg, e)
	case "Fn::Join":
		parts, _ := arg.([]any)
		if len(parts) != 2 {
			return nil, fmt.Errorf("Fn::Join %v: want [delimiter, list]", arg)
		}
		list, err := t.eval(parts[1], e)
		if err != nil {
			return nil, err
		}
		items, _ := list.([]any)
		strs := make([]string, len(items))
		for i, it := range items {
			strs[i] = fmt.Sprint(it)
		}
		return strings.Join(strs, fmt.Sprint(parts[0])), nil
	case "Fn::Split":
		parts, _ := arg.([]any)
		if len(parts) != 2 {
			return nil, fmt.Errorf("Fn::Split %v: want [delimiter, string]", arg)
		}
		s, err := t.eval(parts[1], e)
		if err != nil {
			return nil, err
		}
		var out []any
		for _, p := range strings.Split(fmt.Sprint(s), fmt.Sprint(parts[0])) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::Select":
		parts, _ := arg.([]any)
		if len(parts) != 2 {
			return nil, fmt.Errorf("Fn::Select %v: want [index, list]", arg)
		}
		var i int
		if _, err := fmt.Sscan(fmt.Sprint(parts[0]), &i); err != nil {
			return nil, fmt.Errorf("Fn::Select index %v", parts[0])
		}
		list, err := t.eval(parts[1], e)
		if err != nil {
			return nil, err
		}
		items, _ := list.([]any)
		if i < 0 || i >= len(items) {
			return nil, fmt.Errorf("Fn::Select index %d out of %d", i, len(items))
		}
		return items[i], nil
	case "Fn::If":
		parts, _ := arg.([]any)
		if len(parts) != 3 {
			return nil, fmt.Errorf("Fn::If %v: want [condition, then, else]", arg)
		}
		name, _ := parts[0].(string)
		ok, err := t.Condition(name, e)
		if err != nil {
			return nil, err
		}
		if ok {
			return t.eval(parts[1], e)
		}
		return t.eval(parts[2], e)
	case "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or":
		return t.condition(map[string]any{fn: arg}, e)
	}
	return nil, fmt.Errorf("%s: not supported by this evaluator", fn)
}

func (t Template) ref(name string, e Env) (any, error) {
	if name == "AWS::NoValue" {
		return noValue{}, nil
	}
	p, isParam := t.Parameters()[name]
	v, ok := e.Params[name]
	if !ok && isParam {
		def, hasDefault := p["Default"]
		if !hasDefault {
			return nil, fmt.Errorf("!Ref %s: parameter without a value or default", name)
		}
		v, ok = fmt.Sprint(def), true
	}
	if ok {
		// CloudFormation hands a Number parameter to an integer property
		// as a number.
		if isParam && p["Type"] == "Number" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return n, nil
			}
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f, nil
			}
		}
		return v, nil
	}
	if v, ok := e.Refs[name]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("!Ref %s: no value in the environment", name)
}

var subVar = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

func (t Template) sub(arg any, e Env) (any, error) {
	format, vars := "", map[string]any{}
	switch a := arg.(type) {
	case string:
		format = a
	case []any:
		if len(a) != 2 {
			return nil, fmt.Errorf("Fn::Sub %v: want [string, variables]", arg)
		}
		format, _ = a[0].(string)
		vars, _ = a[1].(map[string]any)
	}
	var firstErr error
	out := subVar.ReplaceAllStringFunc(format, func(m string) string {
		name := m[2 : len(m)-1]
		var v any
		var err error
		switch {
		case vars[name] != nil:
			v, err = t.eval(vars[name], e)
		case strings.Contains(name, "."):
			res, attr, _ := strings.Cut(name, ".")
			v, err = t.intrinsic("Fn::GetAtt", []any{res, attr}, e)
		default:
			v, err = t.ref(name, e)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return fmt.Sprint(v)
	})
	return strings.ReplaceAll(out, "${!", "${"), firstErr
}

// Condition evaluates the named condition of the template.
func (t Template) Condition(name string, e Env) (bool, error) {
	conds, _ := t["Conditions"].(map[string]any)
	c, ok := conds[name]
	if !ok {
		return false, fmt.Errorf("condition %q is not defined", name)
	}
	return t.condition(c, e)
}

func (t Template) condition(v any, e Env) (bool, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return false, fmt.Errorf("condition %v: not a condition function", v)
	}
	for fn, arg := range m {
		args, _ := arg.([]any)
		switch fn {
		case "Condition":
			name, _ := arg.(string)
			return t.Condition(name, e)
		case "Fn::Equals":
			if len(args) != 2 {
				return false, fmt.Errorf("Fn::Equals %v: want two values", arg)
			}
			a, err := t.eval(args[0], e)
			if err != nil {
				return false, err
			}
			b, err := t.eval(args[1], e)
			if err != nil {
				return false, err
			}
			return fmt.Sprint(a) == fmt.Sprint(b), nil
		case "Fn::Not":
			if len(args) != 1 {
				return false, fmt.Errorf("Fn::Not %v: want one condition", arg)
			}
			r, err := t.condition(args[0], e)
			return !r, err
		case "Fn::And", "Fn::Or":
			and := fn == "Fn::And"
			for _, a := range args {
				r, err := t.condition(a, e)
				if err != nil {
					return false, err
				}
				if r != and {
					return r, nil
				}
			}
			return and, nil
		}
		return false, fmt.Errorf("condition function %s: not supported", fn)
	}
	return false, nil
}

// Parameters returns the Parameters section.
func (t Template) Parameters() map[string]map[string]any {
	out := map[string]map[string]any{}
	ps, _ := t["Parameters"].(map[string]any)
	for name, p := range ps {
		if m, ok := p.(map[string]any); ok {
			out[name] = m
		}
	}
	return out
}

// ConditionNames lists the template's conditions, sorted.
func (t Template) ConditionNames() []string {
	conds, _ := t["Conditions"].(map[string]any)
	names := make([]string, 0, len(conds))
	for n := range conds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
